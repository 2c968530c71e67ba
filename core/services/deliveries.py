"""The delivery state machine: claim atomically, record the outcome, find what to re-send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    and_,
    bindparam,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from core.models import Delivery, MessengerLink, Notification, User
from core.models.base import utcnow

DELIVERIES = Delivery.__table__


@dataclass(frozen=True)
class Claimed:
    """A delivery this process now owns, with everything needed to perform it."""

    delivery_id: str
    channel: str
    notification: Notification
    user: User
    # How many times the delivery has been claimed, this claim included.
    attempts: int = 1
    # Telegram's chat id or VK's peer id when the channel is a messenger the user linked.
    link: str | None = None


def _claimable(now: Any, stale_before: Any, c: Any = Delivery) -> ColumnElement[bool]:
    """Pending, or sending with the sender's lease run out before `stale_before` (a crash).

    `c` is the mapped class or its table's columns, for statements that skip the ORM; the
    times are values or bound parameters.
    """
    return or_(
        and_(c.status == "pending", _not_waiting(now, c)),
        and_(c.status == "sending", c.claimed_at < stale_before),
    )


def _not_waiting(now: Any, c: Any = Delivery) -> ColumnElement[bool]:
    """No provider wait (a 429's retry_after, a refused token) still running."""
    return or_(c.not_before.is_(None), c.not_before <= now)


def claim(session: Session, delivery_id: str, lease_seconds: int) -> bool:
    """Take a pending delivery (or one whose sender's lease ran out); True if this caller won."""
    return claim_many(session, [delivery_id], lease_seconds) == [delivery_id]


def claim_many(session: Session, delivery_ids: Sequence[str], lease_seconds: int) -> list[str]:
    """Take every claimable delivery of a batch in one statement; returns the ids won."""
    if not delivery_ids:
        return []
    won = session.scalars(_claiming_ids(), _claim_parameters(delivery_ids, lease_seconds))
    return list(won.all())


def _claim_parameters(delivery_ids: Sequence[str], lease_seconds: int) -> dict[str, Any]:
    """The values of a batch claim's bound parameters (_claiming)."""
    now = utcnow()
    return {
        "claim_ids": list(delivery_ids),
        "claim_now": now,
        "stale_before": now - timedelta(seconds=lease_seconds),
    }


# Built once with bound parameters: a live task's claim and load were built and given a cache
# key on every call, most of a task's CPU in the worker (docs/BENCHMARKS.md, issue 15).
@cache
def _claiming() -> Update:
    """The claim of a batch: its claimable deliveries become this caller's, leased from now."""
    # On the table, not the class: nothing claimed is loaded yet, and the ORM's bulk-update
    # bookkeeping was a third of a live task's CPU (docs/BENCHMARKS.md, B4).
    c = DELIVERIES.c
    now = bindparam("claim_now", type_=c.claimed_at.type)
    stale_before = bindparam("stale_before", type_=c.claimed_at.type)
    return (
        update(DELIVERIES)
        .where(
            c.id.in_(bindparam("claim_ids", expanding=True)),
            _claimable(now, stale_before, c),
        )
        .values(status="sending", claimed_at=now, attempts=c.attempts + 1)
    )


@cache
def _claiming_ids() -> Update:
    """The batch claim, returning the ids it won."""
    return _claiming().returning(DELIVERIES.c.id)


def load(session: Session, delivery_ids: Sequence[str], with_link: bool = False) -> list[Claimed]:
    """The claimed deliveries with their notification and recipient, in one query.

    `with_link` also loads the recipient's linked account on the delivery's channel (the
    messengers), an outer join the inbox and email channels do not pay for.
    """
    rows = session.execute(_loading(with_link, claim=False), {"load_ids": list(delivery_ids)})
    return _claimed(rows)


@cache
def _loading(with_link: bool, claim: bool) -> Select[Any]:
    """Deliveries with their notification and user: those of `load_ids`, or the claim's CTE."""
    c = DELIVERIES.c
    source: Any = DELIVERIES
    if claim:
        returned = (c.id, c.channel, c.attempts, c.notification_id)
        source = _claiming().returning(*returned).cte("claimed")
    d = source.c
    query = (
        select(d.id, d.channel, d.attempts, Notification, User)
        .add_columns(MessengerLink.external_id if with_link else null())
        .select_from(source)
        .join(Notification, d.notification_id == Notification.id)
        .join(User, Notification.user_id == User.id)
    )
    if not claim:
        query = query.where(d.id.in_(bindparam("load_ids", expanding=True)))
    if with_link:
        linked = and_(MessengerLink.user_id == User.id, MessengerLink.channel == d.channel)
        query = query.outerjoin(MessengerLink, linked)
    if claim:
        query = query.add_cte(source)
    return query


def _claimed(rows: Any) -> list[Claimed]:
    """Claimed items from the loading query's rows."""
    return [Claimed(d, channel, n, u, attempts, link) for d, channel, attempts, n, u, link in rows]


def claim_and_load(
    session: Session, delivery_ids: Sequence[str], lease_seconds: int, with_link: bool = False
) -> list[Claimed]:
    """Take every claimable delivery of a batch and load what performing them needs.

    On PostgreSQL the claim is a data-modifying CTE of the loading query: one round trip,
    where a claim and then a load were two. Other databases run claim_many, then load.
    """
    if not delivery_ids:
        return []
    if session.get_bind().dialect.name != "postgresql":
        won = claim_many(session, delivery_ids, lease_seconds)
        return load(session, won, with_link) if won else []
    parameters = _claim_parameters(delivery_ids, lease_seconds)
    return _claimed(session.execute(_loading(with_link, claim=True), parameters))


def finish(session: Session, delivery_id: str, **fields: Any) -> None:
    """Record that a delivery was sent."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(status="sent", finished_at=utcnow(), error=None, **fields)
    )


def finish_many(session: Session, sent: Sequence[tuple[str, str | None]]) -> None:
    """Record many sends at once, as (delivery id, provider message id).

    On PostgreSQL one statement joins the pairs passed as two arrays (psycopg2 would send an
    executemany as one statement per row); other databases run an executemany.
    """
    if not sent:
        return
    table = DELIVERIES
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        ids, message_ids = zip(*sent, strict=True)
        session.execute(_finish_pairs(), {"ids": list(ids), "mids": list(message_ids), "at": now})
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("d_id"), table.c.status == "sending")
        .values(
            status="sent",
            finished_at=bindparam("d_at", type_=table.c.finished_at.type),
            error=None,
            provider_message_id=bindparam("d_mid", type_=table.c.provider_message_id.type),
        )
    )
    session.connection().execute(statement, [{"d_id": d, "d_at": now, "d_mid": m} for d, m in sent])


@cache
def _finish_pairs() -> Update:
    """PostgreSQL: mark sent the deliveries of `ids`, each with its message id of `mids`."""
    table = DELIVERIES
    pairs = (
        func.unnest(
            bindparam("ids", type_=postgresql.ARRAY(table.c.id.type)),
            bindparam("mids", type_=postgresql.ARRAY(table.c.provider_message_id.type)),
        )
        .table_valued("id", "mid")
        .render_derived(name="sent")
    )
    return (
        update(table)
        .where(table.c.id == pairs.c.id, table.c.status == "sending")
        .values(
            status="sent",
            finished_at=bindparam("at", type_=table.c.finished_at.type),
            error=None,
            provider_message_id=pairs.c.mid,
        )
    )


def fail(session: Session, delivery_id: str, error: str) -> None:
    """Record that a delivery failed for good."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(status="failed", finished_at=utcnow(), error=error[:2000])
    )


def suppress(session: Session, delivery_id: str, reason: str) -> None:
    """Record that a delivery was deliberately not sent (the address bounced): final."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(status="suppressed", finished_at=utcnow(), error=reason[:2000])
    )


def renew(session: Session, delivery_ids: Sequence[str]) -> None:
    """Extend the lease of deliveries still being sent, so no one takes them as abandoned."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)), Delivery.status == "sending")
            .values(claimed_at=utcnow())
        )


def release(
    session: Session,
    delivery_id: str,
    error: str,
    *,
    refund: bool = False,
    not_before: datetime | None = None,
) -> None:
    """Hand a delivery back to pending after a transient error, so a retry can claim it.

    `refund` takes back the claim's attempt, for holds that are not failures (a rate limit);
    `not_before` keeps every claimer (the task's retry, the sweeper) off it until then.
    """
    values: dict[str, Any] = {"status": "pending", "error": error[:2000], "not_before": not_before}
    if refund:
        values["attempts"] = Delivery.attempts - 1
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(**values)
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
                    _not_waiting(now),
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


class PermanentFailure(Exception):
    """A send that can never succeed (a refused address, a bad request): recorded, not retried."""


class RetryLater(Exception):
    """A send that may succeed later (5xx, timeout, rate limit), not before `not_before` if set."""

    def __init__(self, message: str, not_before: float | None = None) -> None:
        super().__init__(message)
        # A Unix time, e.g. SendGrid's X-RateLimit-Reset; None means "back off as usual".
        self.not_before = not_before
