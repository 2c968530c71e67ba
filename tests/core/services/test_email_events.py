"""SendGrid Event Webhook posts: only signed, recent ones count; repeats change nothing."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.models import Delivery, User
from core.services import email_events
from core.services.emails import SAMPLES
from core.services.errors import DomainError, Forbidden
from core.services.notifications import notify
from tests.core.conftest import Database
from tests.support.fake_sendgrid import EventSigner

SIGNER = EventSigner()


def signed(body: bytes, age: float = 0) -> tuple[str, str]:
    """(signature, timestamp) headers as SendGrid would send them `age` seconds ago."""
    stamp = str(int(time.time() - age))
    return SIGNER.sign(body, stamp), stamp


def test_a_fresh_signed_post_passes() -> None:
    """The signature covers timestamp + raw body under the configured public key."""
    body = b'[{"event":"delivered"}]'
    email_events.check(SIGNER.public_key, *signed(body), body)


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "stale", "future", "missing", "garbage"],
)
def test_forged_stale_or_unsigned_posts_are_refused(tamper: str) -> None:
    """Any change to the body, an old or far-future timestamp, or no headers: 403."""
    body = b'[{"event":"delivered","notification_id":"x"}]'
    signature, stamp = signed(body, age=301 if tamper == "stale" else 0)
    if tamper == "future":
        signature, stamp = signed(body, age=-301)
    if tamper == "body":
        body = body.replace(b"delivered", b"bounce")
    if tamper == "signature":
        signature = SIGNER.sign(b"something else", stamp)
    if tamper == "garbage":
        signature = "not base64 at all!"
    with pytest.raises(email_events.SignatureRefused):
        if tamper == "missing":
            email_events.check(SIGNER.public_key, None, None, body)
        else:
            email_events.check(SIGNER.public_key, signature, stamp, body)


def test_without_a_key_the_endpoint_is_off() -> None:
    """Unsigned events are never trusted, even in development."""
    with pytest.raises(Forbidden):
        email_events.check(None, *signed(b"[]"), b"[]")


def stored_user(session: Session, role: str) -> User:
    """An English-speaking user of `role` with an address no other test uses."""
    user = User(
        email=f"u-{uuid.uuid4().hex[:10]}@example.com",
        name="U",
        role=role,
        locale="en",
        password_hash="unused",
    )
    session.add(user)
    session.flush()
    return user


def delivery(db: Database, status: str = "sent") -> tuple[str, str]:
    """An email delivery in `status`; returns (notification id, delivery id)."""
    with db.scope() as session:
        user = stored_user(session, "advertiser")
        notification = notify(session, user, "welcome", dict(SAMPLES["welcome"]))
        (row,) = notification.deliveries
        session.flush()
        session.execute(update(Delivery).where(Delivery.id == row.id).values(status=status))
        return notification.id, row.id


def event(notification_id: str, name: str, **extra: object) -> dict[str, object]:
    """One event as SendGrid posts it, our custom arg at the top level."""
    return {
        "event": name,
        "notification_id": notification_id,
        "email": "u@example.com",
        "timestamp": int(time.time()),
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": "abc123.filter0001.1.2",
        **extra,
    }


def state(db: Database, delivery_id: str) -> tuple[str, str | None, str | None]:
    """(status, provider_status, error) of a delivery."""
    with db.scope() as session:
        row = session.get_one(Delivery, delivery_id)
        return row.status, row.provider_status, row.error


def test_events_are_recorded_in_order_of_stage_and_repeats_change_nothing(db: Database) -> None:
    """processed → delivered; a repeat or a late 'processed' is ignored; a bounce still lands."""
    nid, did = delivery(db)
    with db.scope() as session:
        assert email_events.record(session, [event(nid, "processed"), event(nid, "delivered")]) == 2
    assert state(db, did) == ("sent", "delivered", None)
    with db.scope() as session:
        assert email_events.record(session, [event(nid, "delivered"), event(nid, "processed")]) == 0
    with db.scope() as session:
        email_events.record(session, [event(nid, "bounce", reason="550 5.1.1 no such user")])
    assert state(db, did) == ("sent", "bounce", "bounce: 550 5.1.1 no such user")


def test_deferred_then_dropped(db: Database) -> None:
    """Deferral and drop reasons are kept for the user to see."""
    nid, did = delivery(db)
    with db.scope() as session:
        email_events.record(session, [event(nid, "deferred", response="421 try later")])
    assert state(db, did) == ("sent", "deferred", "deferred: 421 try later")
    with db.scope() as session:
        email_events.record(session, [event(nid, "dropped", reason="Bounced Address")])
    assert state(db, did) == ("sent", "dropped", "dropped: Bounced Address")


def test_an_in_doubt_delivery_becomes_sent(db: Database) -> None:
    """A sender that died after SendGrid took the email: the event settles it, no re-send."""
    nid, did = delivery(db, status="sending")
    with db.scope() as session:
        email_events.record(session, [event(nid, "processed")])
    assert state(db, did)[:2] == ("sent", "processed")
    with db.scope() as session:
        assert session.get_one(Delivery, did).provider_message_id == "abc123"


def test_other_events_and_other_mail_are_ignored(db: Database) -> None:
    """Opens, clicks and events without our notification id are not ours to record."""
    nid, did = delivery(db)
    with db.scope() as session:
        events = [
            event(nid, "open"),
            event(nid, "click"),
            {"event": "delivered", "email": "x@example.com"},
            event(str(uuid.uuid4()), "delivered"),
            "not an object",
        ]
        assert email_events.record(session, json.loads(json.dumps(events))) == 0
    assert state(db, did) == ("sent", None, None)
    with db.scope() as session, pytest.raises(DomainError):
        email_events.record(session, {"event": "delivered"})


# A channel owner's optional emails: all off after an opt-out event.
OPTED_OUT = {"welcome": {"email": False}, "new_campaign": {"email": False}}


def owner_with_email(db: Database) -> tuple[str, str, str]:
    """A channel owner with one new_campaign email sent; (user id, address, notification id)."""
    with db.scope() as session:
        user = stored_user(session, "channel_owner")
        notification = notify(session, user, "new_campaign", dict(SAMPLES["new_campaign"]))
        return user.id, user.email, notification.id


def user_state(db: Database, user_id: str) -> tuple[dict, str | None]:
    """(notification_prefs, undeliverable reason) of a user."""
    with db.scope() as session:
        user = session.get_one(User, user_id)
        return dict(user.notification_prefs), user.email_undeliverable_reason


@pytest.mark.parametrize("name", ["unsubscribe", "group_unsubscribe", "spamreport"])
def test_opt_out_events_turn_optional_email_off_once(db: Database, name: str) -> None:
    """Every optional type's email goes off; a replay of the same event changes nothing more."""
    user_id, address, nid = owner_with_email(db)
    posted = event(nid, name, email=address)
    with db.scope() as session:
        assert email_events.record(session, [posted]) == 1
    prefs, reason = user_state(db, user_id)
    assert prefs == OPTED_OUT and reason is None
    # The user turns it back on; SendGrid re-posts the same event: no second effect.
    with db.scope() as session:
        session.get_one(User, user_id).notification_prefs = {}
    with db.scope() as session:
        assert email_events.record(session, [posted]) == 0
    assert user_state(db, user_id)[0] == {}


@pytest.mark.parametrize("name", ["bounce", "dropped"])
def test_bounces_and_drops_mark_the_address_undeliverable(db: Database, name: str) -> None:
    """Found by our custom arg; only for the address the user still has."""
    user_id, address, nid = owner_with_email(db)
    with db.scope() as session:
        email_events.record(session, [event(nid, name, email="old@example.com", reason="x")])
    assert user_state(db, user_id)[1] is None
    with db.scope() as session:
        email_events.record(session, [event(nid, name, email=address, reason="550 5.1.1")])
    assert user_state(db, user_id)[1] == f"{name}: 550 5.1.1"


def test_a_blocked_bounce_is_temporary(db: Database) -> None:
    """SendGrid's bounce of type "blocked" is a server's temporary refusal: no mark."""
    user_id, address, nid = owner_with_email(db)
    with db.scope() as session:
        email_events.record(session, [event(nid, "bounce", email=address, type="blocked")])
    assert user_state(db, user_id)[1] is None


def test_an_event_without_our_id_finds_the_user_by_address(db: Database) -> None:
    """Unsubscribes from a provider's list page carry no custom args of ours."""
    user_id, address, _ = owner_with_email(db)
    posted = {"event": "spamreport", "email": address.upper(), "sg_event_id": uuid.uuid4().hex}
    with db.scope() as session:
        assert email_events.record(session, [posted]) == 1
    assert user_state(db, user_id)[0] == OPTED_OUT
