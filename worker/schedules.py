"""Beat's schedule: crontabs in production, epoch-aligned intervals when JOB_INTERVALS says so."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery.schedules import crontab, schedstate, schedule
from celery.signals import beat_init

from core.services.jobs.cadence import Cadence, cadences
from core.services.jobs.runner import JOBS, TASK_PREFIX
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)
CATCH_UP_TASK = "maintenance.catch_up"


class AlignedInterval(schedule):
    """Due once per epoch-aligned period, right after it starts, whenever beat was started.

    Celery's own interval counts from beat's start, so two beats (or one restarted) would
    not agree on periods; the compressed test schedule needs them to, as crontabs do.
    """

    def __init__(self, run_every: float | timedelta, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(run_every, **kwargs)
        self.cadence = Cadence(self.seconds, offset)

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        """Time until the first period start after `last_run_at`."""
        last = self.maybe_make_aware(last_run_at)
        following = self.cadence.period_end(self.cadence.period_start(last))
        return following - self.maybe_make_aware(self.now())

    def is_due(self, last_run_at: datetime) -> schedstate:
        """Due when a period started after the last run; next check at the next period start."""
        now = self.maybe_make_aware(self.now())
        last = self.maybe_make_aware(last_run_at)
        start = self.cadence.period_start(now)
        until_next = (self.cadence.period_end(start) - now).total_seconds()
        return schedstate(is_due=last < start, next=max(until_next, 0.01))

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.run_every, self.cadence.offset)

    def __repr__(self) -> str:
        return f"<aligned every {self.seconds:g} s>"


def job_entries(settings: Settings) -> dict[str, dict[str, Any]]:
    """One beat entry per job, plus the catch-up of missed periods."""
    entries: dict[str, dict[str, Any]] = {}
    for name, cadence in cadences(settings.JOB_INTERVALS).items():
        if name not in JOBS:
            continue
        when: schedule = (
            crontab(**cadence.crontab)
            if cadence.crontab is not None
            else AlignedInterval(cadence.interval, cadence.offset)
        )
        entries[TASK_PREFIX + name] = {
            "task": TASK_PREFIX + name,
            "schedule": when,
            # Beat sends right after a period starts; a message still unstarted half a period
            # later is stale (the catch-up re-sends what is missing), and a late start must
            # not slip into the next period and take its lease.
            "options": {"expires": cadence.interval / 2},
        }
    entries[CATCH_UP_TASK] = {
        "task": CATCH_UP_TASK,
        "schedule": timedelta(seconds=settings.JOB_CATCH_UP_SECONDS),
        "options": {"expires": settings.JOB_CATCH_UP_SECONDS},
    }
    return entries


@beat_init.connect
def _catch_up_on_start(sender: Any = None, **_: Any) -> None:
    """At beat's start, have a worker run any job whose current period was missed (downtime)."""
    settings = get_settings()
    if not settings.ENABLE_BACKGROUND_TASKS or sender is None:
        return
    try:
        sender.app.send_task(CATCH_UP_TASK, expires=settings.JOB_CATCH_UP_SECONDS)
    except Exception as exc:  # the broker may be down; the periodic catch-up follows anyway
        log.warning("could not send the start-up catch-up: %s", exc)
