"""The delivery state machine: claim atomically, record the outcome, find what to re-send."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, selectinload

from core.models import Delivery, Notification, User
from core.models.base import utcnow


@dataclass(frozen=True)
class Claimed:
    """A delivery this process now owns, with everything needed to perform it."""

    delivery_id: str
    channel: str
    notification: Notification
    user: User


def claim(session: Session, delivery_id: str, lease_seconds: int) -> bool:
    """Take a pending delivery (or one whose sender's lease ran out); True if this caller won."""
    now = utcnow()
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            or_(
                Delivery.status == "pending",
                and_(
                    Delivery.status == "sending",
                    Delivery.claimed_at < now - timedelta(seconds=lease_seconds),
                ),
            ),
        )
        .values(status="sending", claimed_at=now, attempts=Delivery.attempts + 1)
    )
    return result.rowcount == 1


def load(session: Session, delivery_ids: Sequence[str]) -> list[Claimed]:
    """The claimed deliveries with their notification and recipient."""
    rows = session.scalars(
        select(Delivery)
        .where(Delivery.id.in_(delivery_ids))
        .options(selectinload(Delivery.notification))
    ).all()
    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(User.id.in_({d.notification.user_id for d in rows}))
        )
    }
    return [Claimed(d.id, d.channel, d.notification, users[d.notification.user_id]) for d in rows]


def finish(session: Session, delivery_id: str, **fields: Any) -> None:
    """Record that a delivery was sent."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(status="sent", finished_at=utcnow(), error=None, **fields)
    )


def fail(session: Session, delivery_id: str, error: str) -> None:
    """Record that a delivery failed for good."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(status="failed", finished_at=utcnow(), error=error[:2000])
    )


def release(session: Session, delivery_id: str, error: str) -> None:
    """Hand a delivery back to pending after a transient error, so a retry can claim it."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(status="pending", error=error[:2000])
    )


def due_for_sweep(
    session: Session, *, grace_seconds: float, lease_seconds: int, limit: int = 5000
) -> dict[str, list[str]]:
    """Deliveries nobody is working on: pending past the grace, or sending past the lease."""
    now = utcnow()
    rows = session.execute(
        select(Delivery.id, Delivery.channel)
        .where(
            or_(
                and_(
                    Delivery.status == "pending",
                    Delivery.created_at < now - timedelta(seconds=grace_seconds),
                ),
                and_(
                    Delivery.status == "sending",
                    Delivery.claimed_at < now - timedelta(seconds=lease_seconds),
                ),
            )
        )
        .order_by(Delivery.created_at)
        .limit(limit)
    ).all()
    by_channel: dict[str, list[str]] = {}
    for delivery_id, channel in rows:
        by_channel.setdefault(channel, []).append(delivery_id)
    return by_channel


Sender = Callable[[Claimed], dict[str, Any] | None]


class PermanentFailure(Exception):
    """A send that can never succeed (a refused address, a bad request): recorded, not retried."""


def deliver(
    session_factory: Callable[[], Any],
    delivery_ids: Sequence[str],
    send: Sender,
    lease_seconds: int,
) -> dict[str, int]:
    """Claim each delivery, perform it with `send`, and record each outcome; returns counts.

    `send` returns extra columns to store on success. A PermanentFailure is recorded as
    failed; any other exception releases the unsent deliveries to pending and propagates,
    so the task's retry (or the sweeper) performs them later.
    """
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    with session_factory() as session:
        won = [d for d in delivery_ids if claim(session, d, lease_seconds)]
    counts["skipped"] = len(delivery_ids) - len(won)
    if not won:
        return counts
    with session_factory() as session:
        claimed = load(session, won)
    done: list[tuple[str, dict[str, Any]]] = []
    failed: list[tuple[str, str]] = []
    try:
        for item in claimed:
            try:
                done.append((item.delivery_id, send(item) or {}))
            except PermanentFailure as exc:
                failed.append((item.delivery_id, str(exc)))
    except Exception as exc:
        finished = {d for d, _ in done} | {d for d, _ in failed}
        with session_factory() as session:
            for item in claimed:
                if item.delivery_id not in finished:
                    release(session, item.delivery_id, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        # Record what did happen even when a later send raised, so it is never repeated.
        with session_factory() as session:
            for delivery_id, extra in done:
                finish(session, delivery_id, **extra)
            for delivery_id, error in failed:
                fail(session, delivery_id, error)
    counts["sent"], counts["failed"] = len(done), len(failed)
    return counts
