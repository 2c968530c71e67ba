"""Beat's schedule: the crontabs match the jobs' periods; compressed intervals stay aligned."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from datetime import timedelta

import pytest
from celery import Celery
from celery.schedules import crontab

from core.services.jobs.cadence import DEFAULT_CADENCES
from core.settings import Settings
from tests.core.jobs_helpers import at
from tests.support.paths import REPO_ROOT
from worker.schedules import CATCH_UP_TASK, AlignedInterval, job_entries

SECRET = "schedules-test-secret-0123456789abcdef"


@pytest.fixture
def app() -> Celery:
    app = Celery("schedules-test", set_as_current=False)
    app.conf.update(timezone="UTC", enable_utc=True)
    return app


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, JWT_SECRET_KEY=SECRET, **overrides)


@pytest.mark.parametrize("name", list(DEFAULT_CADENCES))
def test_each_crontab_fires_exactly_at_its_job_s_period_starts(app: Celery, name: str):
    cadence = DEFAULT_CADENCES[name]
    last = at("2026-03-01 00:00:30")
    for _ in range(12):
        # Ask the real crontab when it fires next after `last`.
        cron = crontab(**cadence.crontab, app=app, nowfun=lambda last=last: last)
        fires = last + cron.remaining_estimate(last)
        assert fires == cadence.period_end(cadence.period_start(last)), (name, last)
        assert cadence.period_start(fires) == fires
        last = fires + timedelta(seconds=1)


def test_an_aligned_interval_is_due_once_per_period_whenever_beat_started(app: Celery):
    now = {"t": at("2026-03-01 12:00:07")}
    interval = AlignedInterval(10, app=app, nowfun=lambda: now["t"])

    # Beat started at :07: not due until :10, whatever the start time.
    assert interval.is_due(at("2026-03-01 12:00:07")) == (False, pytest.approx(3))
    now["t"] = at("2026-03-01 12:00:10.2")
    due, next_check = interval.is_due(at("2026-03-01 12:00:07"))
    assert due and next_check == pytest.approx(9.8)
    assert interval.is_due(at("2026-03-01 12:00:10.2")) == (False, pytest.approx(9.8))


def test_aligned_intervals_survive_beat_s_schedule_file(app: Celery):
    restored = pickle.loads(pickle.dumps(AlignedInterval(10, 3)))
    assert (restored.seconds, restored.cadence.offset) == (10, 3)


def test_entries_use_utc_crontabs_with_an_expiry_each():
    entries = job_entries(_settings())

    assert set(entries) == {
        "maintenance.update_platform_stats",
        "maintenance.cleanup_old_notifications",
        "maintenance.send_pending_withdrawal_reminders",
        CATCH_UP_TASK,
    }
    stats = entries["maintenance.update_platform_stats"]
    assert stats["schedule"] == crontab(minute=0, hour=0)
    assert entries["maintenance.cleanup_old_notifications"]["schedule"] == crontab(
        minute=0, hour=2, day_of_week="sun"
    )
    assert entries["maintenance.send_pending_withdrawal_reminders"]["schedule"] == crontab(
        minute=0, hour="*/6"
    )
    assert all(entry["options"]["expires"] > 0 for entry in entries.values())
    assert stats["options"]["expires"] == 12 * 3600


def test_job_intervals_compress_the_schedule_without_code_changes():
    entries = job_entries(_settings(JOB_INTERVALS={"update_platform_stats": 4}))

    schedule = entries["maintenance.update_platform_stats"]["schedule"]
    assert isinstance(schedule, AlignedInterval) and schedule.seconds == 4
    assert entries["maintenance.update_platform_stats"]["options"]["expires"] == 2
    assert isinstance(entries["maintenance.cleanup_old_notifications"]["schedule"], crontab)


def _beat_schedule(**env: str) -> dict[str, str]:
    """celeryconfig.beat_schedule as a fresh process with `env` builds it: entry -> schedule."""
    code = (
        "import json, celeryconfig; "
        "print(json.dumps({k: repr(v['schedule']) for k, v in celeryconfig.beat_schedule.items()}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("ENABLE_BACKGROUND_TASKS",)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**clean, "JWT_SECRET_KEY": SECRET, "APP_ENV": "test", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_enable_background_tasks_false_leaves_beat_nothing_to_run():
    assert _beat_schedule(ENABLE_BACKGROUND_TASKS="false") == {}
    enabled = _beat_schedule(ENABLE_BACKGROUND_TASKS="true")
    assert "notifications.sweep" in enabled
    assert "maintenance.update_platform_stats" in enabled
