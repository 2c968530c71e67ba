"""SendGrid Event Webhook posts: check they are SendGrid's and recent, record what they say."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Delivery
from core.models.base import utcnow
from core.services import webhook_signature
from core.services.errors import DomainError, Forbidden

# Posts older (or further in the future) than this are refused, so a captured one cannot replay.
MAX_AGE_SECONDS = 300
# Events arrive out of order and repeated: a later stage never gives way to an earlier one.
# A bounce may follow a delivery (an asynchronous bounce), so it ranks above it.
RANK = {"processed": 1, "deferred": 2, "delivered": 3, "bounce": 4, "dropped": 4}


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


def record(session: Session, events: Any) -> int:
    """Record delivery events matched by our `notification_id` custom arg; returns how many."""
    if not isinstance(events, list):
        raise DomainError("the body must be a JSON array of events", code="invalid_events")
    changed = 0
    for event in events:
        if not isinstance(event, dict) or event.get("event") not in RANK:
            continue  # engagement events (open, click…) and others' mail are not ours to track
        notification_id = event.get("notification_id")
        if not isinstance(notification_id, str):
            continue
        delivery = session.scalars(
            select(Delivery)
            .where(Delivery.notification_id == notification_id, Delivery.channel == "email")
            .with_for_update()
        ).one_or_none()
        if delivery is not None and _apply(delivery, event):
            changed += 1
    return changed
