"""Creating notifications with their deliveries, and reading the inbox."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from core import notification_types
from core.models import Delivery, Notification, User
from core.models.base import utcnow
from core.models.messengers import MESSENGERS
from core.services import messages, preferences
from core.services.dispatch import dispatch_after_commit
from core.services.errors import NotFound

log = logging.getLogger(__name__)


def next_seq(session: Session, user_id: str) -> int:
    """Take the user's next seq under the user row's write lock, so seqs follow commit order."""
    # A Core statement on the table: the ORM's bulk-update bookkeeping cost more than the
    # round trip on the API path (docs/BENCHMARKS.md, B4); notify() syncs the loaded user.
    users = User.__table__
    seq = session.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(last_seq=users.c.last_seq + 1)
        .returning(users.c.last_seq)
    ).scalar_one()
    return int(seq)


def _delivery(user: User, channel: str, created_at: datetime) -> Delivery:
    """A new delivery row: pending, or already suppressed for an address known to bounce."""
    if channel == "email" and user.email_undeliverable_at is not None:
        return Delivery(
            channel=channel,
            status="suppressed",
            created_at=created_at,
            finished_at=created_at,
            error=f"address undeliverable: {user.email_undeliverable_reason or 'bounced'}",
        )
    return Delivery(channel=channel, created_at=created_at)


def notify(
    session: Session,
    user: User,
    notification_type: str,
    data: dict[str, Any],
    *,
    campaign_id: str | None = None,
    title: str | None = None,
    message: str | None = None,
) -> Notification:
    """Store a notification for `user` with a delivery per channel they want, sent after commit."""
    kind = notification_types.get(notification_type)
    if title is None or message is None:
        title, message = messages.render(notification_type, user.locale, data)
    seq = next_seq(session, user.id)
    set_committed_value(user, "last_seq", seq)
    notification = Notification(
        user_id=user.id,
        seq=seq,
        type=notification_type,
        title=title,
        message=message,
        campaign_id=campaign_id,
        payload=data,
        created_at=utcnow(),
    )
    session.add(notification)
    linked = set(user.linked_messengers or ())
    skipped = {}
    for channel in preferences.channels_for(user, kind):
        if channel in MESSENGERS and channel not in linked:
            skipped[channel] = f"no {channel} account linked"
        else:
            notification.deliveries.append(_delivery(user, channel, notification.created_at))
    notification.skipped = skipped or None
    session.flush()
    for delivery in notification.deliveries:
        if delivery.status == "pending":
            dispatch_after_commit(session, delivery.channel, delivery.id)
    # The start of a notification's trail in the logs (broadcasts would flood them: debug).
    log.log(
        logging.DEBUG if notification_type == "broadcast" else logging.INFO,
        "notification %s seq %d stored for user %s",
        notification_type,
        notification.seq,
        user.id,
        extra={"notification_id": notification.id},
    )
    return notification


def to_event(notification: Notification) -> dict[str, Any]:
    """The `notification` Socket.IO event body of SPEC.md's realtime contract."""
    event: dict[str, Any] = {
        "id": notification.id,
        "seq": notification.seq,
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "timestamp": notification.created_at.isoformat().replace("+00:00", "Z"),
    }
    if notification.campaign_id:
        event["campaign_id"] = notification.campaign_id
    if notification.payload:
        event["data"] = notification.payload
    return event


def list_inbox(
    session: Session,
    user_id: str,
    *,
    unread_only: bool = False,
    limit: int = 50,
    before_seq: int | None = None,
) -> Sequence[Notification]:
    """The user's notifications, newest first, optionally unread only or older than a seq."""
    query = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .options(selectinload(Notification.deliveries))
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before_seq is not None:
        query = query.where(Notification.seq < before_seq)
    return session.scalars(query.order_by(Notification.seq.desc()).limit(limit)).all()


def list_after(
    session: Session, user_id: str, after_seq: int, limit: int
) -> Sequence[Notification]:
    """The user's notifications with a seq above `after_seq`, oldest first (catch-up)."""
    query = (
        select(Notification)
        .where(Notification.user_id == user_id, Notification.seq > after_seq)
        .options(selectinload(Notification.deliveries))
        .order_by(Notification.seq)
        .limit(limit)
    )
    return session.scalars(query).all()


def unread_count(session: Session, user_id: str) -> int:
    """How many of the user's notifications are unread."""
    query = select(func.count()).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return int(session.scalar(query) or 0)


def get_own(session: Session, user_id: str, notification_id: str) -> Notification:
    """One of the user's own notifications; someone else's is NotFound."""
    notification = session.get(
        Notification, notification_id, options=[selectinload(Notification.deliveries)]
    )
    if notification is None or notification.user_id != user_id:
        raise NotFound("notification not found")
    return notification


def mark_read(session: Session, user_id: str, notification_id: str) -> Notification:
    """Mark one notification read (idempotent: the first read time is kept)."""
    notification = get_own(session, user_id, notification_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
    return notification


def mark_all_read(session: Session, user_id: str, now: datetime | None = None) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
    )
    return int(result.rowcount or 0)
