"""Creating notifications with their deliveries, and reading the inbox."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from core.db import adopt
from core.models import Delivery, Notification, User
from core.models.base import utcnow
from core.services import notification_writes
from core.services.errors import NotFound
from core.services.notification_writes import Planned

log = logging.getLogger(__name__)


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
    planned = notification_writes.plan(
        user, notification_type, data, campaign_id=campaign_id, title=title, message=message
    )
    notification_writes.write_in_session(session, [planned])
    return _attached(session, planned)


def _attached(session: Session, planned: Planned) -> Notification:
    """The written rows as objects of the session, as if loaded, without reading them back."""
    notification = Notification(**planned.row, seq=planned.seq)
    deliveries = [Delivery(**row) for row in planned.deliveries]
    adopt(session, notification, *deliveries)
    set_committed_value(notification, "deliveries", deliveries)
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
