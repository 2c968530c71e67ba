"""Thin tasks over the scheduled jobs: parse the period, run under the lease, retry in period."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval

from celeryconfig import TASK_RETRY_POLICY
from core.db import session_scope
from core.models.base import utcnow
from core.services.jobs import runner
from core.settings import get_settings
from worker.celery_app import app

TRANSIENT = (*runner.TRANSIENT, OSError, SoftTimeLimitExceeded)
# Cleanup of a big table takes minutes; the lease (JOB_LEASE_SECONDS) outlives the hard limit.
LIMITS = {"soft_time_limit": 1800, "time_limit": 1900}


def _run(task: Task, name: str, period: str | None, trigger: str) -> dict[str, Any]:
    """Run the job for its period; a transient failure is retried while the period lasts."""
    settings = get_settings()
    cadence = runner.cadence_of(name, settings)
    start = datetime.fromisoformat(period) if period else cadence.period_start(utcnow())
    try:
        outcome = runner.run_job(name, trigger=trigger, period=start)
    except TRANSIENT as exc:
        end = cadence.period_end(start)
        countdown = get_exponential_backoff_interval(
            factor=TASK_RETRY_POLICY["retry_backoff"],
            retries=task.request.retries,
            maximum=TASK_RETRY_POLICY["retry_backoff_max"],
            full_jitter=TASK_RETRY_POLICY["retry_jitter"],
        )
        if (end - utcnow()).total_seconds() <= countdown:
            raise  # the period is over before the retry; the next period's run takes over
        raise task.retry(
            exc=exc,
            kwargs={"period": start.isoformat(), "trigger": "retry"},
            countdown=countdown,
            max_retries=TASK_RETRY_POLICY["max_retries"],
            # The retry replaces the beat message's expiry, which would cut it short.
            expires=end,
        ) from exc
    return {"status": outcome.status, "period": start.isoformat(), **outcome.result}


@app.task(name="maintenance.update_platform_stats", bind=True, **LIMITS)
def update_platform_stats(self: Task, period: str | None = None, trigger: str = "beat") -> Any:
    """Compute and upsert the day's platform statistics."""
    return _run(self, "update_platform_stats", period, trigger)


@app.task(name="maintenance.cleanup_old_notifications", bind=True, **LIMITS)
def cleanup_old_notifications(self: Task, period: str | None = None, trigger: str = "beat") -> Any:
    """Delete notifications older than the retention, in batches."""
    return _run(self, "cleanup_old_notifications", period, trigger)


@app.task(name="maintenance.send_pending_withdrawal_reminders", bind=True, **LIMITS)
def send_pending_withdrawal_reminders(
    self: Task, period: str | None = None, trigger: str = "beat"
) -> Any:
    """Remind admins of withdrawals pending for more than 24 hours."""
    return _run(self, "send_pending_withdrawal_reminders", period, trigger)


@app.task(name="maintenance.catch_up")
def catch_up() -> dict[str, str]:
    """Send the run of every job whose current period was missed (downtime, a lost message)."""
    settings = get_settings()
    with session_scope() as session:
        due = runner.missed(session, settings)
    for name, start in due.items():
        end = runner.cadence_of(name, settings).period_end(start)
        app.send_task(
            runner.TASK_PREFIX + name,
            kwargs={"period": start.isoformat(), "trigger": "catch_up"},
            expires=end,
        )
    return {name: start.isoformat() for name, start in due.items()}
