"""The audit trail: admin actions recorded in the transaction that performs them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditEvent, User

# Where an action came from: the client address (or "cli") and its User-Agent.
Origin = tuple[str | None, str | None]


def record(
    session: Session,
    actor: User | None,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    origin: Origin = (None, None),
    **details: Any,
) -> AuditEvent:
    """Write one event; it commits or rolls back with the action itself."""
    address, user_agent = origin
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        address=address,
        user_agent=(user_agent or "")[:300] or None,
        details=details,
    )
    session.add(event)
    return event


def page(session: Session, limit: int = 50, before: int | None = None) -> Sequence[AuditEvent]:
    """Events newest first; `before` is the id of the last event of the previous page."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return session.scalars(query).all()
