"""The (job, period) lease: one holder per period, taken over only after a failure or a death."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from core.models import JobRun
from core.services.jobs import leases
from tests.core.concurrency import race
from tests.core.conftest import Database
from tests.core.jobs_helpers import at

PERIOD = at("2026-03-02 00:00")
NOW = at("2026-03-02 00:00:01")
JOB = "update_platform_stats"


def claim(db: Database, period=PERIOD, now=NOW, trigger="beat") -> JobRun | None:
    with db.scope() as session:
        return leases.claim(session, JOB, period, trigger=trigger, now=now, lease_seconds=60)


def finish(db: Database, run: JobRun, status: str, now=NOW) -> bool:
    with db.scope() as session:
        return leases.finish(session, run, status=status, now=now, result={"n": 1})


def test_one_claim_per_period(db: Database):
    first = claim(db)

    assert first is not None and (first.status, first.attempts) == ("running", 1)
    assert claim(db) is None
    assert claim(db, period=PERIOD + timedelta(days=1)) is not None


def test_a_succeeded_period_is_never_claimed_again(db: Database):
    run = claim(db)
    assert finish(db, run, "succeeded", now=NOW + timedelta(seconds=2))

    assert claim(db, now=NOW + timedelta(hours=5)) is None
    with db.scope() as session:
        stored = session.get_one(JobRun, run.id)
        assert (stored.status, stored.duration_ms, stored.result) == ("succeeded", 2000, {"n": 1})


def test_a_failed_period_is_claimed_again_as_a_further_attempt(db: Database):
    finish(db, claim(db), "failed")

    again = claim(db, trigger="retry")

    assert again is not None
    assert (again.attempts, again.trigger, again.status) == (2, "retry", "running")


def test_a_dead_holder_s_lease_is_taken_over_only_once_it_expires(db: Database):
    first = claim(db)

    assert claim(db, now=NOW + timedelta(seconds=59)) is None
    taken = claim(db, now=NOW + timedelta(seconds=61))
    assert taken is not None and taken.attempts == 2
    # The first holder, alive after all, may not overwrite the new holder's outcome.
    assert not finish(db, first, "succeeded")
    assert finish(db, taken, "succeeded")


def test_manual_runs_have_no_period_and_never_collide(db: Database):
    claim(db)
    manual = [claim(db, period=None, trigger="manual") for _ in range(2)]

    assert all(run is not None and run.period is None for run in manual)
    with db.scope() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 3


def test_racing_claimers_get_one_lease(db: Database, postgres_only):
    def contender(barrier):
        barrier.wait()
        return claim(db)

    results = race(*[contender] * 6)

    assert sum(r is not None and not isinstance(r, Exception) for r in results) == 1, results
