"""The delivery state machine: atomic claims, leases, outcomes and the sweep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from core.models import Delivery, User
from core.models.base import utcnow
from core.services import deliveries, notifications
from tests.core.concurrency import race
from tests.core.conftest import Database, Factory

LEASE = 60


@pytest.fixture
def user(make: Factory) -> User:
    return make.user(email="ann@example.com")


def new_deliveries(db: Database, make: Factory, user: User, count: int = 1, kind: str = "inbox"):
    """Commit `count` notifications with one pending delivery each on `kind`; their ids."""
    notification_type = {"inbox": "broadcast", "email": "welcome"}[kind]
    ids = []
    for n in range(count):
        note = notifications.notify(
            make.session, user, notification_type, {}, title=f"t{n}", message=f"m{n}"
        )
        [delivery] = note.deliveries
        ids.append(delivery.id)
    make.session.commit()
    return ids


def row(db: Database, delivery_id: str) -> Delivery:
    """The delivery as committed now."""
    with db.scope() as session:
        return session.get_one(Delivery, delivery_id)


def set_row(db: Database, delivery_id: str, **values: Any) -> None:
    with db.scope() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


def claim(db: Database, delivery_id: str, lease: int = LEASE) -> bool:
    with db.scope() as session:
        return deliveries.claim(session, delivery_id, lease)


def ago(seconds: float):
    return utcnow() - timedelta(seconds=seconds)


# --- claim ----------------------------------------------------------------------------


def test_a_claim_takes_a_pending_delivery_and_a_second_claim_loses(db, make, user):
    [delivery_id] = new_deliveries(db, make, user)

    assert claim(db, delivery_id) is True
    assert claim(db, delivery_id) is False

    taken = row(db, delivery_id)
    assert (taken.status, taken.attempts) == ("sending", 1)
    assert abs(utcnow() - taken.claimed_at) < timedelta(seconds=30)


def test_of_many_simultaneous_claims_exactly_one_wins(db, make, user):
    [delivery_id] = new_deliveries(db, make, user)

    def take(barrier):
        barrier.wait(timeout=10)
        return claim(db, delivery_id)

    assert sorted(race(*[take] * 4)) == [False, False, False, True]
    assert row(db, delivery_id).attempts == 1


def test_an_expired_lease_lets_a_new_claim_win(db, make, user):
    [delivery_id] = new_deliveries(db, make, user)
    claim(db, delivery_id)
    set_row(db, delivery_id, claimed_at=ago(LEASE - 5))
    assert claim(db, delivery_id) is False  # the first sender may still be working

    set_row(db, delivery_id, claimed_at=ago(LEASE + 5))

    assert claim(db, delivery_id) is True
    assert row(db, delivery_id).attempts == 2


@pytest.mark.parametrize("status", ["sent", "failed"])
def test_a_finished_delivery_is_never_claimed_again(db, make, user, status):
    [delivery_id] = new_deliveries(db, make, user)
    set_row(db, delivery_id, status=status, claimed_at=ago(3600))

    assert claim(db, delivery_id) is False


def test_an_unknown_delivery_cannot_be_claimed(db):
    assert claim(db, "missing") is False


# --- outcomes -------------------------------------------------------------------------


def test_finish_records_the_send_and_the_provider_s_columns(db, make, user):
    [delivery_id] = new_deliveries(db, make, user)
    claim(db, delivery_id)

    with db.scope() as session:
        deliveries.finish(session, delivery_id, provider_message_id="sg-123")

    done = row(db, delivery_id)
    assert (done.status, done.error, done.provider_message_id) == ("sent", None, "sg-123")
    assert done.finished_at is not None


def test_finish_many_gives_each_send_its_own_message_id(db, make, user):
    ids = new_deliveries(db, make, user, count=4)
    for delivery_id in ids[:3]:
        claim(db, delivery_id)  # the fourth stays pending: not this batch's to record

    with db.scope() as session:
        deliveries.finish_many(
            session, [(ids[0], "sg-a"), (ids[1], None), (ids[2], "sg-c"), (ids[3], "sg-d")]
        )

    stored = [row(db, delivery_id) for delivery_id in ids]
    assert [(d.status, d.provider_message_id) for d in stored] == [
        ("sent", "sg-a"), ("sent", None), ("sent", "sg-c"), ("pending", None)
    ]  # fmt: skip
    assert all(d.finished_at is not None for d in stored[:3])


def test_claim_and_load_takes_only_the_claimable_and_loads_them(db, make, user):
    ids = new_deliveries(db, make, user, count=3)
    claim(db, ids[1])  # someone else's, lease running

    with db.scope() as session:
        claimed = deliveries.claim_and_load(session, [*ids, "missing"], LEASE)
        got = sorted(
            (c.delivery_id, c.attempts, c.user.email, c.notification.title) for c in claimed
        )

    titles = {ids[0]: "t0", ids[2]: "t2"}
    assert got == sorted((i, 1, "ann@example.com", titles[i]) for i in (ids[0], ids[2]))
    assert [row(db, i).status for i in ids] == ["sending"] * 3


def test_fail_records_the_error_for_good(db, make, user):
    [delivery_id] = new_deliveries(db, make, user)
    claim(db, delivery_id)

    with db.scope() as session:
        deliveries.fail(session, delivery_id, "refused: " + "x" * 5000)

    failed = row(db, delivery_id)
    assert failed.status == "failed"
    assert failed.error.startswith("refused: ") and len(failed.error) == 2000
    assert failed.finished_at is not None
    set_row(db, delivery_id, claimed_at=ago(LEASE * 10))
    assert claim(db, delivery_id) is False


def test_release_hands_the_delivery_back_for_a_retry(db, make, user):
    [delivery_id] = new_deliveries(db, make, user)
    claim(db, delivery_id)

    with db.scope() as session:
        deliveries.release(session, delivery_id, "ConnectionError: broker down")

    released = row(db, delivery_id)
    assert (released.status, released.error) == ("pending", "ConnectionError: broker down")
    assert claim(db, delivery_id) is True
    assert row(db, delivery_id).attempts == 2


@pytest.mark.parametrize(
    "record",
    [
        lambda s, d: deliveries.finish(s, d),
        lambda s, d: deliveries.fail(s, d, "e"),
        lambda s, d: deliveries.release(s, d, "e"),
    ],
    ids=["finish", "fail", "release"],
)
def test_outcomes_only_apply_to_a_delivery_being_sent(db, make, user, record):
    [delivery_id] = new_deliveries(db, make, user)

    with db.scope() as session:
        record(session, delivery_id)

    untouched = row(db, delivery_id)
    assert (untouched.status, untouched.error, untouched.finished_at) == ("pending", None, None)


def test_load_brings_the_notification_and_its_recipient(db, make, user):
    [delivery_id] = new_deliveries(db, make, user)

    with db.scope() as session:
        [item] = deliveries.load(session, [delivery_id])

    assert (item.delivery_id, item.channel) == (delivery_id, "inbox")
    assert (item.user.id, item.user.email) == (user.id, "ann@example.com")
    assert (item.notification.user_id, item.notification.title) == (user.id, "t0")


# --- the sweep ------------------------------------------------------------------------


def test_the_sweep_picks_pending_past_the_grace_and_sending_past_the_lease(db, make, user):
    live = new_deliveries(db, make, user, count=6)
    [email_old] = new_deliveries(db, make, user, kind="email")
    pending_new, pending_old, sending_new, sending_old, sent_old, failed_old = live
    set_row(db, pending_old, created_at=ago(30))
    set_row(db, email_old, created_at=ago(20))
    set_row(db, sending_new, status="sending", created_at=ago(3600), claimed_at=ago(10))
    set_row(db, sending_old, status="sending", created_at=ago(40), claimed_at=ago(LEASE + 5))
    set_row(db, sent_old, status="sent", created_at=ago(3600), claimed_at=ago(3600))
    set_row(db, failed_old, status="failed", created_at=ago(3600), claimed_at=ago(3600))

    with db.scope() as session:
        due = deliveries.due_for_sweep(session, grace_seconds=5, lease_seconds=LEASE)

    assert due == {"inbox": [sending_old, pending_old], "email": [email_old]}
    assert pending_new not in due["inbox"]


def test_the_sweep_is_bounded(db, make, user):
    ids = new_deliveries(db, make, user, count=3)
    for age, delivery_id in zip((30, 20, 10), ids, strict=True):
        set_row(db, delivery_id, created_at=ago(age))

    with db.scope() as session:
        due = deliveries.due_for_sweep(session, grace_seconds=5, lease_seconds=LEASE, limit=2)

    assert due == {"inbox": ids[:2]}
