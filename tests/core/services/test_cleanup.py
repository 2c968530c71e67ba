"""The weekly cleanup removes exactly the notifications past retention, with their deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, insert, select

from core.models import Delivery, Notification, SeenEmailEvent, User
from core.models.base import new_id
from core.services import cleanup
from core.services.jobs.runner import run_job
from tests.core.conftest import Database, Factory
from tests.core.jobs_helpers import at, frozen, with_settings

NOW = at("2026-03-08 02:00")  # a Sunday, the cleanup's hour
CUTOFF = NOW - timedelta(days=30)


def seed(db: Database, user: User, ages: list[timedelta]) -> dict[timedelta, str]:
    """One notification (with live and email deliveries) per age before NOW; returns their ids."""
    ids = {age: new_id() for age in ages}
    notifications = [
        {
            "id": ids[age],
            "user_id": user.id,
            "seq": seq,
            "type": "broadcast",
            "title": "t",
            "message": "m",
            "payload": {},
            "created_at": NOW - age,
        }
        for seq, age in enumerate(ages, start=1)
    ]
    deliveries = [
        {
            "id": new_id(),
            "notification_id": ids[age],
            "channel": channel,
            "status": "sent",
            "attempts": 1,
            "created_at": NOW - age,
        }
        for age in ages
        for channel in ("inbox", "email")
    ]
    with db.scope() as session:
        session.execute(insert(Notification), notifications)
        session.execute(insert(Delivery), deliveries)
    return ids


def remaining(db: Database) -> tuple[set[str], int]:
    with db.scope() as session:
        ids = set(session.scalars(select(Notification.id)))
        return ids, int(session.scalar(select(func.count()).select_from(Delivery)) or 0)


def test_rows_on_both_sides_of_the_30_day_line_only_the_old_go(db: Database, make: Factory):
    user = make.user()
    make.session.commit()
    second = timedelta(seconds=1)
    ages = [
        timedelta(days=400),
        timedelta(days=31),
        timedelta(days=30) + second,  # just past the line: old
        timedelta(days=30),  # exactly on the line: kept (strictly older goes)
        timedelta(days=30) - second,
        timedelta(days=1),
        timedelta(0),
    ]
    ids = seed(db, user, ages)

    totals = cleanup.delete_older_than(db.scope, CUTOFF, batch_size=1000)

    kept = {ids[a] for a in ages if a <= timedelta(days=30)}
    assert remaining(db) == (kept, 2 * len(kept))
    assert totals == {"notifications": 3, "deliveries": 6, "batches": 1}


def test_batches_are_bounded_and_the_count_is_exact(db: Database, make: Factory):
    user = make.user()
    make.session.commit()
    old = [timedelta(days=31, minutes=i) for i in range(23)]
    new = [timedelta(days=29, minutes=i) for i in range(5)]
    seed(db, user, old + new)

    totals = cleanup.delete_older_than(db.scope, CUTOFF, batch_size=5)

    assert totals == {"notifications": 23, "deliveries": 46, "batches": 5}
    assert len(remaining(db)[0]) == 5


def test_nothing_old_means_nothing_deleted(db: Database, make: Factory):
    user = make.user()
    make.session.commit()
    seed(db, user, [timedelta(days=1)])

    assert cleanup.delete_older_than(db.scope, CUTOFF, 100) == {
        "notifications": 0,
        "deliveries": 0,
        "batches": 0,
    }


def test_the_job_uses_the_configured_retention(db: Database, settings, make: Factory):
    user = make.user()
    make.session.commit()
    ids = seed(db, user, [timedelta(days=8), timedelta(days=6)])

    with frozen(NOW):
        outcome = run_job(
            "cleanup_old_notifications",
            scope=db.scope,
            settings=with_settings(settings, NOTIFICATION_RETENTION_DAYS=7),
        )

    assert outcome.result["notifications"] == 1
    assert datetime.fromisoformat(outcome.result["cutoff"]) == NOW - timedelta(days=7)
    assert remaining(db)[0] == {ids[timedelta(days=6)]}


def test_seen_provider_events_are_forgotten_past_retention(db: Database):
    with db.scope() as session:
        session.execute(
            insert(SeenEmailEvent),
            [
                {"event_id": "old", "created_at": CUTOFF - timedelta(seconds=1)},
                {"event_id": "new", "created_at": CUTOFF + timedelta(seconds=1)},
            ],
        )

    assert cleanup.forget_email_events(db.scope, CUTOFF) == 1

    with db.scope() as session:
        assert list(session.scalars(select(SeenEmailEvent.event_id))) == ["new"]
