"""Run a job for a period under its lease, record the outcome, and find missed periods."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from core.db import session_scope
from core.models import JobRun
from core.models.base import utcnow
from core.services import cleanup, reminders, stats
from core.services.jobs import leases
from core.services.jobs.base import JobContext, JobWork, Scope
from core.services.jobs.cadence import Cadence, cadences
from core.settings import Settings, get_settings

log = logging.getLogger("jobs")

TASK_PREFIX = "maintenance."
JOBS: dict[str, JobWork] = {
    "update_platform_stats": stats.run,
    "cleanup_old_notifications": cleanup.run,
    "send_pending_withdrawal_reminders": reminders.run,
}
# Errors that another try may not meet: the database or the network hiccuped.
TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, ConnectionError, TimeoutError)


@dataclass
class Outcome:
    """What one call did: succeeded, failed, or skipped (lease held, period done or over)."""

    job: str
    status: str
    period: datetime | None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_ms: int = 0
    attempts: int = 0
    reason: str | None = None


def cadence_of(name: str, settings: Settings) -> Cadence:
    """The job's cadence, after the JOB_INTERVALS overrides."""
    return cadences(settings.JOB_INTERVALS)[name]


def grace(cadence: Cadence) -> timedelta:
    """How long after a period starts the scheduled run may still be on its way."""
    return timedelta(seconds=min(60.0, cadence.interval / 2))


def run_job(
    name: str,
    *,
    trigger: str = "beat",
    period: datetime | None = None,
    scope: Scope = session_scope,
    settings: Settings | None = None,
) -> Outcome:
    """Run `name` once for `period` (default: the current one) unless its lease says otherwise.

    A manual run skips the lease (it is recorded without a period) and works on the current
    period. The job's own exception propagates after the failure is recorded, so the caller
    (the Celery task) decides whether to retry.
    """
    if name not in JOBS:
        raise KeyError(f"unknown job {name!r}; known: {', '.join(JOBS)}")
    settings = settings or get_settings()
    cadence = cadence_of(name, settings)
    now = utcnow()
    start = period or cadence.period_start(now)
    end = cadence.period_end(start)
    manual = trigger == "manual"
    if not manual and now >= end:
        log.warning("job %s period %s: skipped, the period is over", name, start.isoformat())
        return Outcome(name, "skipped", start, reason="period over")
    with scope() as session:
        run = leases.claim(
            session,
            name,
            None if manual else start,
            trigger=trigger,
            now=now,
            lease_seconds=settings.JOB_LEASE_SECONDS,
        )
    if run is None:
        log.info("job %s period %s: skipped, done or running elsewhere", name, start.isoformat())
        return Outcome(name, "skipped", start, reason="lease held")
    ctx = JobContext(name, start, end, now, trigger, settings)
    label = start.isoformat()
    log.info("job %s period %s (%s, attempt %d): started", name, label, trigger, run.attempts)
    began = time.monotonic()
    try:
        result = JOBS[name](scope, ctx)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        with scope() as session:
            leases.finish(session, run, status="failed", now=utcnow(), error=error)
        log.exception("job %s period %s: failed after %.1f s", name, label, _since(began))
        raise
    with scope() as session:
        kept = leases.finish(session, run, status="succeeded", now=utcnow(), result=result)
    took = int(_since(began) * 1000)
    log.info("job %s period %s: succeeded in %d ms: %s", name, label, took, result)
    if not kept:
        log.warning("job %s period %s: the lease was taken over before it finished", name, label)
    return Outcome(name, "succeeded", start, result, None, took, run.attempts)


def _since(began: float) -> float:
    """Seconds since a monotonic instant."""
    return time.monotonic() - began


def missed(session: Any, settings: Settings, now: datetime | None = None) -> dict[str, datetime]:
    """Jobs whose current period has no run, a failed one, or one whose worker died."""
    now = now or utcnow()
    due: dict[str, datetime] = {}
    for name in JOBS:
        cadence = cadence_of(name, settings)
        start = cadence.period_start(now)
        if now - start < grace(cadence):
            continue  # beat's own message for this period is probably still on its way
        run = session.scalars(
            select(JobRun).where(JobRun.job == name, JobRun.period == start)
        ).one_or_none()
        if (
            run is None
            or run.status == "failed"
            or (run.status == "running" and run.lease_until < now)
        ):
            due[name] = start
    return due
