"""The inbox: per-user gap-free seq, catch-up order, read state and the live event's shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import notification_types
from core.models import Delivery, MessengerLink, Notification, User
from core.services import notifications
from core.services.errors import NotFound
from tests.core.concurrency import race
from tests.core.conftest import Database, Factory


def say(session: Session, user: User, text: str = "hello") -> Notification:
    """Store one broadcast-type notification for `user`."""
    return notifications.notify(session, user, "broadcast", {}, title=text, message=text)


def seqs_of(session: Session, user_id: str) -> list[int]:
    query = select(Notification.seq).where(Notification.user_id == user_id)
    return list(session.scalars(query.order_by(Notification.seq)))


# --- seq ------------------------------------------------------------------------------


def test_seq_counts_each_user_s_notifications_from_one(make: Factory):
    ann, bob = make.user(), make.user()

    assert [say(make.session, ann).seq for _ in range(3)] == [1, 2, 3]
    assert [say(make.session, bob).seq for _ in range(2)] == [1, 2]
    assert say(make.session, ann).seq == 4


def test_a_rolled_back_notification_leaves_no_gap(db: Database, make: Factory):
    user = make.user()
    say(make.session, user)
    make.session.commit()

    with db.sessions() as aborted:
        say(aborted, aborted.get_one(User, user.id))
        aborted.rollback()
    with db.scope() as session:
        assert say(session, session.get_one(User, user.id)).seq == 2

    assert seqs_of(make.session, user.id) == [1, 2]


def test_concurrent_notifications_of_one_user_get_every_seq_once(db: Database, make: Factory):
    user_id = make.user().id
    make.session.commit()
    per_thread = 10

    def write(barrier):
        barrier.wait(timeout=10)
        for _ in range(per_thread):
            with db.scope() as session:
                say(session, session.get_one(User, user_id))

    outcomes = race(*[write] * 4)

    assert outcomes == [None] * 4
    assert seqs_of(make.session, user_id) == list(range(1, 4 * per_thread + 1))


# --- reading --------------------------------------------------------------------------


def test_list_after_gives_what_follows_a_seq_oldest_first(make: Factory):
    user, other = make.user(), make.user()
    for n in range(1, 6):
        say(make.session, user, f"n{n}")
    say(make.session, other)

    after = notifications.list_after(make.session, user.id, 2, limit=100)

    assert [(n.seq, n.title) for n in after] == [(3, "n3"), (4, "n4"), (5, "n5")]
    assert [n.seq for n in notifications.list_after(make.session, user.id, 0, limit=2)] == [1, 2]
    assert notifications.list_after(make.session, user.id, 5, limit=100) == []


def test_the_inbox_is_newest_first_and_pages_by_seq(make: Factory):
    user = make.user()
    for _ in range(5):
        say(make.session, user)

    inbox = notifications.list_inbox
    assert [n.seq for n in inbox(make.session, user.id)] == [5, 4, 3, 2, 1]
    assert [n.seq for n in inbox(make.session, user.id, limit=2)] == [5, 4]
    assert [n.seq for n in inbox(make.session, user.id, before_seq=4, limit=2)] == [3, 2]


def test_unread_count_mark_read_and_unread_only(make: Factory):
    user = make.user()
    first, second, third = (say(make.session, user) for _ in range(3))

    notifications.mark_read(make.session, user.id, second.id)

    assert notifications.unread_count(make.session, user.id) == 2
    unread = notifications.list_inbox(make.session, user.id, unread_only=True)
    assert [n.id for n in unread] == [third.id, first.id]


def test_mark_read_is_idempotent_and_keeps_the_first_read_time(make: Factory):
    user = make.user()
    notification = say(make.session, user)

    notifications.mark_read(make.session, user.id, notification.id)
    first_read = notification.read_at
    notifications.mark_read(make.session, user.id, notification.id)

    assert first_read is not None
    assert notification.read_at == first_read
    assert notifications.unread_count(make.session, user.id) == 0


def test_read_all_counts_what_it_changed_and_only_for_that_user(make: Factory):
    user, other = make.user(), make.user()
    notes = [say(make.session, user) for _ in range(3)]
    say(make.session, other)
    notifications.mark_read(make.session, user.id, notes[0].id)

    assert notifications.mark_all_read(make.session, user.id) == 2
    assert notifications.mark_all_read(make.session, user.id) == 0
    assert notifications.unread_count(make.session, user.id) == 0
    assert notifications.unread_count(make.session, other.id) == 1


def test_another_user_s_notification_is_not_found(make: Factory):
    owner, stranger = make.user(), make.user()
    notification = say(make.session, owner)

    with pytest.raises(NotFound):
        notifications.get_own(make.session, stranger.id, notification.id)
    with pytest.raises(NotFound):
        notifications.mark_read(make.session, stranger.id, notification.id)
    with pytest.raises(NotFound):
        notifications.get_own(make.session, owner.id, "missing")

    assert notification.read_at is None


# --- writing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notification_type", "channels"),
    [
        ("welcome", ["email"]),
        ("new_campaign", ["email", "inbox"]),
        ("campaign_accepted", ["email", "inbox"]),
        ("campaign_rejected", ["email", "inbox"]),
        ("campaign_completed", ["email", "inbox"]),
        ("withdrawal_processed", ["email", "inbox"]),
        ("withdrawal_rejected", ["email", "inbox"]),
        ("withdrawal_reminder", ["email", "inbox"]),
        ("broadcast", ["inbox"]),
        ("password_reset", ["email"]),
    ],
)
def test_each_type_gets_one_pending_delivery_per_channel(
    make: Factory, notification_type, channels
):
    user = make.user()
    make.session.add(MessengerLink(user_id=user.id, channel="vk", external_id="2000000001"))
    user.linked_messengers = ["vk"]
    notification = notifications.notify(
        make.session, user, notification_type, {}, title="t", message="m"
    )

    rows = make.session.scalars(
        select(Delivery).where(Delivery.notification_id == notification.id)
    ).all()
    kind = notification_types.get(notification_type)
    # The linked VK is on its way; Telegram is not linked: recorded as skipped, no row.
    assert sorted(d.channel for d in rows) == sorted(
        channels + (["vk"] if "vk" in kind.channels else [])
    )
    assert {d.status for d in rows} == {"pending"}
    expected = {"telegram": "no telegram account linked"} if "telegram" in kind.channels else None
    assert notification.skipped == expected
    assert [t.status for t in notification.timeline if t.channel == "telegram"] == (
        ["skipped"] if expected else []
    )


@pytest.mark.parametrize(
    ("locale", "title"), [("ru", "Заявка отклонена"), ("en", "Campaign rejected")]
)
def test_titles_are_in_the_recipient_s_locale(make: Factory, locale, title):
    advertiser = make.user(locale=locale)
    campaign = make.campaign(advertiser, status="rejected")

    [notice] = notifications.list_inbox(make.session, advertiser.id)
    assert (notice.type, notice.title) == ("campaign_rejected", title)
    assert campaign.title in notice.message


# --- the live event -------------------------------------------------------------------


def test_to_event_has_the_realtime_contract_s_shape(db: Database, make: Factory):
    campaign = make.campaign()
    notice_id = notifications.list_inbox(make.session, campaign.channel.owner_id)[0].id
    make.session.commit()

    with db.scope() as session:  # read back, as catch-up does
        event = notifications.to_event(session.get_one(Notification, notice_id))

    assert set(event) == {
        "id",
        "seq",
        "type",
        "title",
        "message",
        "campaign_id",
        "data",
        "timestamp",
    }
    assert (event["id"], event["seq"], event["type"]) == (notice_id, 1, "new_campaign")
    assert event["campaign_id"] == campaign.id
    assert event["data"]["campaign_id"] == campaign.id
    assert event["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


def test_to_event_leaves_out_what_a_notification_lacks(make: Factory):
    event = notifications.to_event(say(make.session, make.user()))

    assert set(event) == {"id", "seq", "type", "title", "message", "timestamp"}
    assert event["timestamp"].endswith("Z")


def test_each_shape_of_write_stores_exactly_what_was_planned(db: Database, make: Factory):
    # PostgreSQL reuses one statement per shape (columns, deliveries): shapes met in turn,
    # and again, must not mix up whose value goes where.
    ann, bob = make.user(locale="en"), make.user()
    bob.email_undeliverable_at = datetime(2026, 1, 2, tzinfo=UTC)
    bob.email_undeliverable_reason = "bounce"
    make.session.commit()
    data = {"campaign_id": "c-1", "campaign_title": "Spring", "channel_id": "ch-1",
            "channel_name": "News", "advertiser_name": "Ann", "price": "15000.00",
            "nested": {"list": [1, "two"]}}  # fmt: skip
    written = [
        notifications.notify(make.session, ann, "broadcast", {}, title="One", message="first"),
        notifications.notify(make.session, bob, "new_campaign", data),
        notifications.notify(make.session, ann, "new_campaign", data),
        notifications.notify(make.session, bob, "broadcast", {}, title="Two", message="second"),
    ]
    make.session.commit()

    with db.sessions() as fresh:
        stored = {n.id: n for n in fresh.scalars(select(Notification))}
        assert len(stored) == 4
        for note in written:
            row = stored[note.id]
            assert (row.user_id, row.type, row.seq, row.title, row.message, row.payload) == (
                note.user_id, note.type, note.seq, note.title, note.message, note.payload
            )  # fmt: skip
            assert row.created_at == note.created_at
            assert sorted((d.channel, d.status, d.error) for d in row.deliveries) == sorted(
                (d.channel, d.status, d.error) for d in note.deliveries
            )
    assert [n.seq for n in written] == [1, 1, 2, 2]
    assert stored[written[1].id].payload == data
    assert ("email", "suppressed", "address undeliverable: bounce") in [
        (d.channel, d.status, d.error) for d in stored[written[1].id].deliveries
    ]
    assert [d.status for d in stored[written[2].id].deliveries] == ["pending", "pending"]
