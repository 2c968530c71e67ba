"""SendGrid Event Webhook posts: check they are SendGrid's and recent, record what they say."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.models import Delivery, Notification, SeenEmailEvent, User
from core.models.base import utcnow
from core.services import preferences, webhook_signature
from core.services.errors import DomainError, Forbidden

# Posts older (or further in the future) than this are refused, so a captured one cannot replay.
MAX_AGE_SECONDS = 300
# Events arrive out of order and repeated: a later stage never gives way to an earlier one.
# A bounce may follow a delivery (an asynchronous bounce), so it ranks above it.
RANK = {"processed": 1, "deferred": 2, "delivered": 3, "bounce": 4, "dropped": 4}
# Events about the person rather than one message: their optional email goes off.
OPT_OUT_EVENTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})
# Events that say the address takes no mail: later emails are suppressed until it changes.
# A bounce of type "blocked" is a receiving server's temporary refusal, not a dead address.
UNDELIVERABLE_EVENTS = frozenset({"bounce", "dropped"})


class SignatureRefused(DomainError):
    """A webhook post that is not signed by SendGrid's key, or too old."""

    status = 403
    code = "invalid_signature"


def check(
    public_key: str | None,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: float | None = None,
) -> None:
    """Refuse a post unless it carries a valid signature over a timestamp less than 5 min old."""
    if not public_key:
        raise Forbidden("the event webhook is not configured", code="webhook_disabled")
    if not signature or not timestamp:
        raise SignatureRefused("missing signature or timestamp header")
    try:
        stamp = int(timestamp)
    except ValueError:
        raise SignatureRefused("the timestamp is not a Unix time") from None
    if abs((now if now is not None else time.time()) - stamp) > MAX_AGE_SECONDS:
        raise SignatureRefused("the timestamp is more than 5 minutes away from now")
    key = webhook_signature.load_public_key(public_key)
    if not webhook_signature.verify(key, signature, timestamp, body):
        raise SignatureRefused("the signature does not match")


def _apply(delivery: Delivery, event: dict[str, Any]) -> bool:
    """Record one event on its delivery; False when it tells nothing new (a repeat, or older)."""
    name = str(event["event"])
    if RANK[name] <= RANK.get(delivery.provider_status or "", 0):
        return False
    delivery.provider_status = name
    if delivery.status in ("pending", "sending"):
        # SendGrid has the message, whatever became of our sender: never send it again.
        delivery.status = "sent"
        delivery.finished_at = utcnow()
        delivery.error = None
    if not delivery.provider_message_id and event.get("sg_message_id"):
        delivery.provider_message_id = str(event["sg_message_id"]).split(".", 1)[0][:200]
    if name in ("bounce", "dropped", "deferred"):
        reason = event.get("reason") or event.get("response") or event.get("type") or name
        delivery.error = f"{name}: {reason}"[:2000]
    elif name == "delivered":
        delivery.error = None
    return True


def _first_time(session: Session, event: dict[str, Any]) -> bool:
    """Note the event's id; False when it was already acted on (SendGrid re-posts, replays)."""
    event_id = event.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id:
        return True  # no id to remember: the effects below are idempotent on their own
    dialect = session.get_bind().dialect.name
    values = {"event_id": event_id[:100], "created_at": utcnow()}
    if dialect == "postgresql":
        statement = postgresql.insert(SeenEmailEvent).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(SeenEmailEvent).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - the platform runs on the two above
        statement = insert(SeenEmailEvent).values(values)
    return session.execute(statement).rowcount == 1


def _user_of(session: Session, event: dict[str, Any]) -> User | None:
    """The user an event is about: by our notification id custom arg, else by its address."""
    notification_id = event.get("notification_id")
    if isinstance(notification_id, str):
        user = session.scalar(
            select(User)
            .join(Notification, Notification.user_id == User.id)
            .where(Notification.id == notification_id)
        )
        if user is not None:
            return user
    address = event.get("email")
    if isinstance(address, str) and address:
        return session.scalar(select(User).where(func.lower(User.email) == address.lower()))
    return None


def _act_on_user(session: Session, event: dict[str, Any]) -> bool:
    """Turn optional email off, or mark the address undeliverable; True if the user changed."""
    name = str(event["event"])
    if name == "bounce" and event.get("type") == "blocked":
        return False
    user = _user_of(session, event)
    if user is None or not _first_time(session, event):
        return False
    if name in OPT_OUT_EVENTS:
        return preferences.opt_out(session, user.id)
    address = event.get("email")
    if isinstance(address, str) and address.lower() != user.email.lower():
        return False  # about an address the user has since replaced
    if user.email_undeliverable_at is not None:
        return False
    reason = event.get("reason") or event.get("response") or name
    user.email_undeliverable_at = utcnow()
    user.email_undeliverable_reason = f"{name}: {reason}"[:500]
    return True


def record(session: Session, events: Any) -> int:
    """Record delivery events and act on opt-outs and bounces; returns how many changed something.

    Deliveries are matched by our `notification_id` custom arg; users by it or by address.
    """
    if not isinstance(events, list):
        raise DomainError("the body must be a JSON array of events", code="invalid_events")
    changed = 0
    for event in events:
        if not isinstance(event, dict):
            continue
        name = event.get("event")
        if name in RANK and _track(session, event):
            changed += 1
        if name in OPT_OUT_EVENTS | UNDELIVERABLE_EVENTS and _act_on_user(session, event):
            changed += 1
    return changed


def _track(session: Session, event: dict[str, Any]) -> bool:
    """Record one message's fate on its email delivery; False when unknown or nothing new."""
    notification_id = event.get("notification_id")
    if not isinstance(notification_id, str):
        return False  # engagement events (open, click…) and others' mail are not ours to track
    delivery = session.scalars(
        select(Delivery)
        .where(Delivery.notification_id == notification_id, Delivery.channel == "email")
        .with_for_update()
    ).one_or_none()
    return delivery is not None and _apply(delivery, event)
