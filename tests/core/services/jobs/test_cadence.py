"""Periods: aligned to the epoch, so every process agrees which period "now" is in."""

from __future__ import annotations

import pytest

from core.services.jobs.cadence import DEFAULT_CADENCES, Cadence, cadences
from tests.core.jobs_helpers import at

STATS = DEFAULT_CADENCES["update_platform_stats"]
CLEANUP = DEFAULT_CADENCES["cleanup_old_notifications"]
REMINDERS = DEFAULT_CADENCES["send_pending_withdrawal_reminders"]


@pytest.mark.parametrize(
    ("cadence", "now", "start"),
    [
        (STATS, "2026-03-02 00:00", "2026-03-02 00:00"),
        (STATS, "2026-03-02 23:59:59", "2026-03-02 00:00"),
        (REMINDERS, "2026-03-02 05:59:59", "2026-03-02 00:00"),
        (REMINDERS, "2026-03-02 06:00", "2026-03-02 06:00"),
        (REMINDERS, "2026-03-02 23:00", "2026-03-02 18:00"),
        # 2026-03-08 is a Sunday: the cleanup's period runs Sunday 02:00 to Sunday 02:00.
        (CLEANUP, "2026-03-08 02:00", "2026-03-08 02:00"),
        (CLEANUP, "2026-03-08 01:59", "2026-03-01 02:00"),
        (CLEANUP, "2026-03-11 12:00", "2026-03-08 02:00"),
    ],
)
def test_period_start(cadence: Cadence, now: str, start: str):
    assert cadence.period_start(at(now)) == at(start)
    assert cadence.period_end(at(start)) - at(start) == cadence.period_end(at(now)) - at(now)


def test_overrides_replace_a_crontab_with_an_aligned_interval():
    compressed = cadences({"send_pending_withdrawal_reminders": 10})

    cadence = compressed["send_pending_withdrawal_reminders"]
    assert (cadence.interval, cadence.crontab) == (10.0, None)
    assert cadence.period_start(at("2026-03-02 12:00:17")) == at("2026-03-02 12:00:10")
    assert compressed["update_platform_stats"] == STATS


def test_unknown_job_intervals_are_refused(settings):
    from pydantic import ValidationError

    from core.settings import Settings

    with pytest.raises(ValidationError, match="unknown job"):
        Settings(_env_file=None, JWT_SECRET_KEY=settings.JWT_SECRET_KEY, JOB_INTERVALS={"x": 1})
    with pytest.raises(ValidationError, match="positive"):
        Settings(
            _env_file=None,
            JWT_SECRET_KEY=settings.JWT_SECRET_KEY,
            JOB_INTERVALS={"update_platform_stats": 0},
        )
