"""Running jobs under the lease: recorded outcomes, retries in period, catch-up after downtime."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models import JobRun, PlatformStats
from core.services.jobs import runner
from core.services.jobs.runner import missed, run_job
from core.services.jobs.status import health_summary, job_statuses
from tests.core.conftest import Database
from tests.core.jobs_helpers import at, frozen

JOB = "update_platform_stats"


def runs(db: Database, job: str = JOB) -> list[JobRun]:
    with db.scope() as session:
        return list(
            session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.started_at))
        )


@pytest.fixture
def flaky(monkeypatch):
    """Make the stats job fail until `calls["fail"]` is False."""
    calls = {"fail": True, "count": 0}
    real = runner.JOBS[JOB]

    def work(scope, ctx):
        calls["count"] += 1
        if calls["fail"]:
            raise ConnectionError("database went away")
        return real(scope, ctx)

    monkeypatch.setitem(runner.JOBS, JOB, work)
    return calls


def test_a_run_is_recorded_with_its_period_duration_and_counts(db: Database, settings):
    with frozen("2026-03-02 00:00:01"):
        outcome = run_job(JOB, scope=db.scope, settings=settings)

    [run] = runs(db)
    assert (outcome.status, outcome.period) == ("succeeded", at("2026-03-02 00:00"))
    assert (run.status, run.trigger, run.period, run.attempts) == (
        "succeeded",
        "beat",
        at("2026-03-02 00:00"),
        1,
    )
    assert run.duration_ms is not None and run.result["day"] == "2026-03-01"


def test_a_second_run_in_the_same_period_is_skipped(db: Database, settings):
    with frozen("2026-03-02 00:00:01"):
        run_job(JOB, scope=db.scope, settings=settings)
    with frozen("2026-03-02 13:00"):
        again = run_job(JOB, scope=db.scope, settings=settings)

    assert (again.status, again.reason) == ("skipped", "lease held")
    assert len(runs(db)) == 1


def test_a_failure_is_recorded_raised_and_retried_within_the_period(db: Database, settings, flaky):
    with frozen("2026-03-02 00:00:01"), pytest.raises(ConnectionError):
        run_job(JOB, scope=db.scope, settings=settings)
    [failed] = runs(db)
    assert (failed.status, failed.error) == ("failed", "ConnectionError: database went away")

    flaky["fail"] = False
    with frozen("2026-03-02 00:00:09"):
        retried = run_job(
            JOB, trigger="retry", period=at("2026-03-02 00:00"), scope=db.scope, settings=settings
        )

    [run] = runs(db)
    assert (retried.status, run.status, run.attempts, run.error) == (
        "succeeded",
        "succeeded",
        2,
        None,
    )


def test_a_retry_after_its_period_ended_does_nothing(db: Database, settings, flaky):
    flaky["fail"] = False
    with frozen("2026-03-03 00:00:01"):
        late = run_job(
            JOB, trigger="retry", period=at("2026-03-02 00:00"), scope=db.scope, settings=settings
        )

    assert (late.status, late.reason, flaky["count"]) == ("skipped", "period over", 0)


def test_after_downtime_the_missed_daily_run_is_caught_up_once(db: Database, settings):
    with frozen("2026-03-02 00:00:01"):
        run_job(JOB, scope=db.scope, settings=settings)
    # Down from Monday night to Wednesday 03:00: Tuesday's and Wednesday's midnights missed.
    with frozen("2026-03-04 03:00"), db.scope() as session:
        due = missed(session, settings)
    assert due[JOB] == at("2026-03-04 00:00")

    with frozen("2026-03-04 03:00"):
        first = run_job(JOB, trigger="catch_up", period=due[JOB], scope=db.scope, settings=settings)
        second = run_job(
            JOB, trigger="catch_up", period=due[JOB], scope=db.scope, settings=settings
        )
        with db.scope() as session:
            assert JOB not in missed(session, settings)

    assert (first.status, second.status) == ("succeeded", "skipped")
    with db.scope() as session:
        days = [
            r.day.isoformat()
            for r in session.scalars(select(PlatformStats).order_by(PlatformStats.day))
        ]
    assert days == ["2026-03-01", "2026-03-03"]


def test_catch_up_leaves_a_fresh_period_to_beat_and_retakes_failed_or_dead_runs(
    db: Database, settings, flaky
):
    with frozen("2026-03-02 00:00:30"), db.scope() as session:
        assert JOB not in missed(session, settings)  # beat's message may be on its way
    with frozen("2026-03-02 00:00:01"), pytest.raises(ConnectionError):
        run_job(JOB, scope=db.scope, settings=settings)
    with frozen("2026-03-02 02:00"), db.scope() as session:
        assert JOB in missed(session, settings)


def test_status_shows_last_run_and_overdue_periods(db: Database, settings):
    with frozen("2026-03-02 00:00:01"):
        run_job(JOB, scope=db.scope, settings=settings)
    with frozen("2026-03-02 12:30"), db.scope() as session:
        listed = {j["name"]: j for j in job_statuses(session, settings)}
        summary = health_summary(session, settings)

    stats_job = listed[JOB]
    assert stats_job["task"] == "maintenance.update_platform_stats"
    assert stats_job["schedule"] == "daily at 00:00 UTC"
    assert stats_job["overdue"] is False
    assert stats_job["last_run"]["status"] == "succeeded"
    assert stats_job["last_success_at"].startswith("2026-03-02T00:00:01")
    # Never run this period (and long past the catch-up): overdue.
    assert listed["send_pending_withdrawal_reminders"]["overdue"] is True
    assert listed["send_pending_withdrawal_reminders"]["last_run"] is None
    assert summary[JOB]["last_status"] == "succeeded"
    assert summary[JOB]["last_result"]["day"] == "2026-03-01"


def test_unknown_jobs_are_refused(db: Database, settings):
    with pytest.raises(KeyError, match="unknown job"):
        run_job("nope", scope=db.scope, settings=settings)


def test_manual_runs_ignore_a_held_lease(db: Database, settings):
    with frozen("2026-03-02 00:00:01"):
        run_job(JOB, scope=db.scope, settings=settings)
        manual = run_job(JOB, trigger="manual", scope=db.scope, settings=settings)

    assert manual.status == "succeeded"
    assert [r.period for r in runs(db)] == [at("2026-03-02 00:00"), None]


def test_elapsed_time_is_measured(db: Database, settings):
    with frozen("2026-03-02 00:00:01"):
        outcome = run_job(JOB, scope=db.scope, settings=settings)
    assert outcome.duration_ms >= 0
    assert timedelta(milliseconds=outcome.duration_ms) < timedelta(seconds=30)
