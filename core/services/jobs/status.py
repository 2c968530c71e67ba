"""Each job's last run and whether its current period is overdue, for admins and /health."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import JobRun
from core.models.base import utcnow
from core.services.jobs.runner import JOBS, TASK_PREFIX, cadence_of, grace
from core.settings import Settings


def _iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with a Z, or None."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def run_to_dict(run: JobRun) -> dict[str, Any]:
    """A run as the API shows it."""
    return {
        "period": _iso(run.period),
        "trigger": run.trigger,
        "status": run.status,
        "attempts": run.attempts,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_ms": run.duration_ms,
        "result": run.result,
        "error": run.error,
    }


def job_statuses(
    session: Session, settings: Settings, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every job with its schedule, last run, last success and an overdue flag."""
    now = now or utcnow()
    out = []
    for name in JOBS:
        cadence = cadence_of(name, settings)
        period = cadence.period_start(now)
        last = session.scalars(
            select(JobRun).where(JobRun.job == name).order_by(JobRun.started_at.desc()).limit(1)
        ).first()
        success = session.scalars(
            select(JobRun)
            .where(JobRun.job == name, JobRun.status == "succeeded")
            .order_by(JobRun.finished_at.desc())
            .limit(1)
        ).first()
        done_now = session.scalar(
            select(JobRun.id).where(
                JobRun.job == name, JobRun.period == period, JobRun.status == "succeeded"
            )
        )
        # Overdue once the catch-up, too, should have run it.
        patience = grace(cadence) + timedelta(seconds=settings.JOB_CATCH_UP_SECONDS)
        out.append(
            {
                "name": name,
                "task": TASK_PREFIX + name,
                "schedule": cadence.describe(),
                "period": _iso(period),
                "overdue": done_now is None and now - period > patience,
                "last_run": run_to_dict(last) if last else None,
                "last_success_at": _iso(success.finished_at) if success else None,
            }
        )
    return out


def health_summary(session: Session, settings: Settings) -> dict[str, Any]:
    """The compact form for /health: per job, last status, when, how long, overdue."""
    summary: dict[str, Any] = {}
    for job in job_statuses(session, settings):
        last = job["last_run"] or {}
        summary[job["name"]] = {
            "last_status": last.get("status"),
            "last_started_at": last.get("started_at"),
            "last_duration_ms": last.get("duration_ms"),
            "last_result": last.get("result"),
            "overdue": job["overdue"],
        }
    return summary
