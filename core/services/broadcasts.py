"""Admin broadcasts, fanned out in the background: stored for every user in set-based batches.

The request only records the broadcast (202 at once). A worker then walks the users in id order,
`BATCH_SIZE` at a time; each batch is one transaction that takes every user's next `seq` with a
single `UPDATE … RETURNING` (the row locks keep each user's seqs gap-free and in commit order,
as `notification_writes` does for one user) and inserts their notifications in one
statement. After the commit, the batch's users who are connected right now get a live delivery;
the others read the broadcast on their next catch-up. A user who connects after that look was
admitted after the commit, so their catch-up already includes it: nobody falls between the two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from core.models import Broadcast, Delivery, Notification, User
from core.models.base import new_id, utcnow
from core.services.dispatch import dispatch_after_commit
from core.services.errors import NotFound

log = logging.getLogger(__name__)
# Users per transaction: large enough that statements, not round trips, dominate; small enough
# that a batch holds its row locks for a few tens of milliseconds.
BATCH_SIZE = 2000


def create(session: Session, admin: User, title: str, message: str) -> Broadcast:
    """Record a broadcast to every user, to be fanned out by a worker."""
    total = session.scalar(select(func.count()).select_from(User)) or 0
    item = Broadcast(title=title, message=message, created_by=admin.id, total=total)
    session.add(item)
    session.flush()
    log.info("broadcast %s queued for %d users", item.id, total)
    return item


def get(session: Session, broadcast_id: str) -> Broadcast:
    """One broadcast, for its progress."""
    item = session.get(Broadcast, broadcast_id)
    if item is None:
        raise NotFound("no such broadcast")
    return item


@dataclass(frozen=True)
class Batch:
    """What one batch stored: each user's new notification, and whether the fan-out is done."""

    notifications: dict[str, str]  # user id -> notification id
    done: bool


def store_batch(session: Session, broadcast_id: str, size: int = BATCH_SIZE) -> Batch:
    """Store the broadcast for the next `size` users after the cursor, in one transaction."""
    item = session.get(Broadcast, broadcast_id, with_for_update=True)
    if item is None or item.status in ("done", "failed"):
        return Batch({}, True)
    now = utcnow()
    users = User.__table__
    # Lock the batch's rows in id order, so two writers never wait on each other in a circle.
    batch = (
        select(users.c.id)
        .where(users.c.id > (item.cursor or ""))
        .order_by(users.c.id)
        .limit(size)
        .with_for_update()
    )
    ids = list(session.scalars(batch))
    if not ids:
        return Batch({}, True)
    seqs = session.execute(
        update(users)
        .where(users.c.id.in_(ids))
        .values(last_seq=users.c.last_seq + 1)
        .returning(users.c.id, users.c.last_seq)
    ).all()
    rows = [
        {
            "id": new_id(),
            "user_id": user_id,
            "seq": seq,
            "type": "broadcast",
            "title": item.title,
            "message": item.message,
            "campaign_id": None,
            "payload": {},
            "created_at": now,
        }
        for user_id, seq in seqs
    ]
    session.execute(insert(Notification), rows)
    item.status, item.heartbeat_at = "running", now
    item.cursor = ids[-1]
    item.stored += len(rows)
    return Batch({row["user_id"]: row["id"] for row in rows}, len(ids) < size)


def push_live(
    session: Session, broadcast_id: str, notifications: dict[str, str], connected: Iterable[str]
) -> int:
    """Give the connected users' notifications a live delivery, enqueued after commit."""
    targets = [notifications[u] for u in connected if u in notifications]
    if targets:
        now = utcnow()
        rows = [
            {"id": new_id(), "notification_id": n, "channel": "inbox", "created_at": now}
            for n in targets
        ]
        session.execute(insert(Delivery), rows)
        for row in rows:
            dispatch_after_commit(session, "inbox", row["id"])
        session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(pushed=Broadcast.pushed + len(rows))
        )
    return len(targets)


SessionScope = Callable[[], Any]


def finish(session: Session, broadcast_id: str) -> None:
    """Mark a broadcast done once every user has it (a failed one stays failed)."""
    item = session.get(Broadcast, broadcast_id, with_for_update=True)
    if item is not None and item.status in ("queued", "running"):
        now = utcnow()
        item.status, item.finished_at, item.heartbeat_at = "done", now, now
        log.info("broadcast %s done: %d stored, %d pushed live", item.id, item.stored, item.pushed)


def fan_out(
    session_scope: SessionScope,
    broadcast_id: str,
    connected_users: Callable[[], set[str]],
    size: int = BATCH_SIZE,
) -> dict[str, int]:
    """Store and push a broadcast batch by batch until every user has it."""
    stored = pushed = 0
    while True:
        with session_scope() as session:
            batch = store_batch(session, broadcast_id, size)
        if batch.notifications:
            # Looked up after the commit: see the module's docstring for why nobody is missed.
            online = connected_users()
            with session_scope() as session:
                pushed += push_live(session, broadcast_id, batch.notifications, online)
            stored += len(batch.notifications)
        if batch.done:
            break
    with session_scope() as session:
        finish(session, broadcast_id)
    return {"stored": stored, "pushed": pushed}


def stalled(session: Session, grace_seconds: float, lease_seconds: float) -> list[str]:
    """Broadcasts nobody is fanning out: never started past the grace, or a silent worker's."""
    now = utcnow()
    rows = session.scalars(
        select(Broadcast.id).where(
            ((Broadcast.status == "queued") & (Broadcast.created_at < _ago(now, grace_seconds)))
            | (
                (Broadcast.status == "running")
                & (Broadcast.heartbeat_at < _ago(now, lease_seconds))
            )
        )
    )
    return list(rows)


def _ago(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)
