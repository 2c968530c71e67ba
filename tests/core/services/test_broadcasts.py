"""Broadcasts fanned out in batches: every user once, seqs gap-free, live only to the connected."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from core.db import session_scope
from core.models import Broadcast, Delivery, Notification, User
from core.models.base import utcnow
from core.services import broadcasts, notifications
from tests.core.concurrency import race
from tests.core.conftest import Database, Factory


def _inbox(db: Database, user_id: str) -> list[tuple[int, str]]:
    with db.scope() as session:
        rows = session.execute(
            select(Notification.seq, Notification.type)
            .where(Notification.user_id == user_id)
            .order_by(Notification.seq)
        ).all()
    return [(seq, kind) for seq, kind in rows]


def _queued(db: Database, make: Factory, users: int) -> tuple[str, list[User]]:
    """`users` users (an admin among them) and a broadcast queued by the admin."""
    admin = make.user("admin")
    people = [admin, *(make.user() for _ in range(users - 1))]
    item = broadcasts.create(make.session, admin, "Maintenance", "Tonight at 2")
    make.session.commit()
    return item.id, people


def test_every_user_gets_it_once_in_batches(
    app_database: Database, make: Factory, recorded_dispatches: list
) -> None:
    db = app_database
    broadcast_id, people = _queued(db, make, 7)
    online = {people[1].id, people[4].id}

    # The platform's own unit of work, whose after-commit hook hands deliveries to the queue.
    result = broadcasts.fan_out(session_scope, broadcast_id, lambda: online, size=3)

    assert result == {"stored": 7, "pushed": 2}
    for person in people:
        kinds = [kind for _, kind in _inbox(db, person.id)]
        assert kinds.count("broadcast") == 1
    with db.scope() as session:
        item = session.get(Broadcast, broadcast_id)
        assert (item.status, item.total, item.stored, item.pushed) == ("done", 7, 7, 2)
        live = session.scalars(select(Delivery.notification_id).where(Delivery.channel == "inbox"))
        owners = set(
            session.scalars(select(Notification.user_id).where(Notification.id.in_(list(live))))
        )
    # Only the connected got a live delivery, and it was handed to the queue after commit.
    assert owners >= online
    pushed = [ids for channel, ids in recorded_dispatches if channel == "inbox"]
    assert sum(len(ids) for ids in pushed) == 2


def test_a_second_run_adds_nothing(db: Database, make: Factory, recorded_dispatches: list) -> None:
    broadcast_id, people = _queued(db, make, 4)
    broadcasts.fan_out(db.scope, broadcast_id, set, size=2)
    assert broadcasts.fan_out(db.scope, broadcast_id, set, size=2) == {"stored": 0, "pushed": 0}
    assert all(len(_inbox(db, p.id)) == len(set(_inbox(db, p.id))) for p in people)


def test_a_retry_resumes_after_the_last_stored_batch(
    db: Database, make: Factory, recorded_dispatches: list
) -> None:
    broadcast_id, people = _queued(db, make, 5)
    with db.scope() as session:
        first = broadcasts.store_batch(session, broadcast_id, size=2)
    assert len(first.notifications) == 2 and not first.done
    # The worker died here; the retry goes on from the cursor.
    assert broadcasts.fan_out(db.scope, broadcast_id, set, size=2)["stored"] == 3
    for person in people:
        assert [kind for _, kind in _inbox(db, person.id)].count("broadcast") == 1


def test_seqs_stay_gap_free_beside_other_notifications(
    db: Database, make: Factory, postgres_only: None, recorded_dispatches: list
) -> None:
    """A fan-out racing campaign notices for the same users: every user's seqs 1, 2, 3…"""
    broadcast_id, people = _queued(db, make, 40)

    def notices(barrier: threading.Barrier) -> None:
        barrier.wait()
        for person in people[::3]:
            with db.scope() as session:
                user = session.get(User, person.id)
                notifications.notify(session, user, "broadcast", {}, title="t", message="m")

    def fan_out(barrier: threading.Barrier) -> dict[str, int]:
        barrier.wait()
        return broadcasts.fan_out(db.scope, broadcast_id, set, size=7)

    outcomes = race(fan_out, notices)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    for person in people:
        seqs = [seq for seq, _ in _inbox(db, person.id)]
        assert seqs == list(range(1, len(seqs) + 1))


def test_stalled_broadcasts_are_found(db: Database, make: Factory) -> None:
    broadcast_id, _ = _queued(db, make, 2)
    with db.scope() as session:
        assert broadcasts.stalled(session, grace_seconds=5, lease_seconds=60) == []
    with time_machine.travel(utcnow() + timedelta(seconds=30)), db.scope() as session:
        assert broadcasts.stalled(session, grace_seconds=5, lease_seconds=60) == [broadcast_id]


def test_an_unknown_broadcast_is_not_found(db: Database, make: Factory) -> None:
    from core.services.errors import NotFound

    with pytest.raises(NotFound):
        broadcasts.get(make.session, "00000000-0000-0000-0000-000000000000")
