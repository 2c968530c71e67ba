"""When each job runs, as epoch-aligned periods, so every process agrees on "this period"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = 3600
DAY = 24 * HOUR
WEEK = 7 * DAY


@dataclass(frozen=True)
class Cadence:
    """Periods of `interval` seconds starting `offset` seconds after the Unix epoch (UTC).

    A crontab firing once per period at its start is the same schedule: daily at 00:00 is
    (1 day, 0); Sundays at 02:00 is (1 week, 3 days 2 h), since 1970-01-01 was a Thursday.
    """

    interval: float
    offset: float = 0.0
    # The crontab(**fields) beat uses in production; None means an aligned interval.
    crontab: dict[str, Any] | None = None
    label: str = ""

    def period_start(self, now: datetime) -> datetime:
        """The start of the period containing `now`."""
        elapsed = (now - EPOCH).total_seconds() - self.offset
        periods = elapsed // self.interval
        return EPOCH + timedelta(seconds=self.offset + periods * self.interval)

    def period_end(self, start: datetime) -> datetime:
        """The end (exclusive) of the period starting at `start`."""
        return start + timedelta(seconds=self.interval)

    def describe(self) -> str:
        """A human description for the admin API and logs."""
        return self.label or f"every {self.interval:g} s"


DEFAULT_CADENCES: dict[str, Cadence] = {
    "update_platform_stats": Cadence(DAY, 0, {"minute": 0, "hour": 0}, "daily at 00:00 UTC"),
    "cleanup_old_notifications": Cadence(
        WEEK,
        3 * DAY + 2 * HOUR,
        {"minute": 0, "hour": 2, "day_of_week": "sun"},
        "Sundays at 02:00 UTC",
    ),  # fmt: skip
    "send_pending_withdrawal_reminders": Cadence(
        6 * HOUR, 0, {"minute": 0, "hour": "*/6"}, "every 6 hours (00, 06, 12, 18 UTC)"
    ),
}


def cadences(overrides: dict[str, float] | None = None) -> dict[str, Cadence]:
    """Every job's cadence, with `overrides` (seconds) as epoch-aligned intervals instead."""
    result = dict(DEFAULT_CADENCES)
    for name, seconds in (overrides or {}).items():
        result[name] = Cadence(float(seconds))
    return result
