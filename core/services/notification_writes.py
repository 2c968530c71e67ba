"""Storing notifications: planned in Python, written with their seq and deliveries at once.

A notification is three writes that belong together: the recipient's next `seq` (taken under
the user row's write lock, so seqs follow commit order), the notification row, and one delivery
row per channel the recipient wants. On PostgreSQL they go out as one statement of
data-modifying CTEs, together with the domain row that caused them (a campaign), so creating a
campaign costs one round trip to write instead of six (docs/BENCHMARKS.md, issue 15). Other
databases (SQLite) run the same statements one after another inside the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from core import notification_types
from core.models import Delivery, Notification, User
from core.models.base import new_id, utcnow
from core.models.messengers import MESSENGERS
from core.services import messages, preferences
from core.services.dispatch import dispatch_after_commit

log = logging.getLogger(__name__)
Domain = ReturningInsert[Any] | ReturningUpdate[Any]

USERS = User.__table__
NOTIFICATIONS = Notification.__table__
DELIVERIES = Delivery.__table__


@dataclass(frozen=True)
class RecipientRow:
    """What deciding and rendering a notification reads of its user, read as plain columns."""

    id: str
    locale: str
    notification_prefs: dict[str, Any]
    linked_messengers: list[str]
    email_undeliverable_at: datetime | None
    email_undeliverable_reason: str | None


# A loaded User has every one of those attributes, so either will do.
Recipient = User | RecipientRow
RECIPIENT_COLUMNS = tuple(RecipientRow.__dataclass_fields__)


@dataclass
class Planned:
    """One notification ready to be written: its row without the seq, and its delivery rows."""

    user_id: str
    type: str
    row: dict[str, Any]
    deliveries: list[dict[str, Any]]
    seq: int | None = field(default=None)

    @property
    def id(self) -> str:
        """The notification's id, chosen before writing."""
        return str(self.row["id"])

    def pending(self) -> dict[str, list[str]]:
        """The delivery ids to hand to the task queue once written, by channel."""
        out: dict[str, list[str]] = {}
        for row in self.deliveries:
            if row["status"] == "pending":
                out.setdefault(row["channel"], []).append(row["id"])
        return out


def _delivery(
    recipient: Recipient, notification_id: str, channel: str, now: datetime
) -> dict[str, Any]:
    """A delivery row: pending, or already suppressed for an address known to bounce."""
    row: dict[str, Any] = {
        "id": new_id(),
        "notification_id": notification_id,
        "channel": channel,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "finished_at": None,
        "error": None,
    }
    if channel == "email" and recipient.email_undeliverable_at is not None:
        reason = recipient.email_undeliverable_reason or "bounced"
        row.update(status="suppressed", finished_at=now, error=f"address undeliverable: {reason}")
    return row


def plan(
    recipient: Recipient,
    notification_type: str,
    data: dict[str, Any],
    *,
    campaign_id: str | None = None,
    title: str | None = None,
    message: str | None = None,
) -> Planned:
    """Render the notification in the recipient's language and pick the channels they want."""
    kind = notification_types.get(notification_type)
    if title is None or message is None:
        title, message = messages.render(notification_type, recipient.locale, data)
    now = utcnow()
    row: dict[str, Any] = {
        "id": new_id(),
        "user_id": recipient.id,
        "type": notification_type,
        "title": title,
        "message": message,
        "campaign_id": campaign_id,
        "payload": data,
        "created_at": now,
    }
    linked = set(recipient.linked_messengers or ())
    skipped: dict[str, str] = {}
    deliveries = []
    for channel in preferences.channels_for(recipient, kind):
        if channel in MESSENGERS and channel not in linked:
            skipped[channel] = f"no {channel} account linked"
        else:
            deliveries.append(_delivery(recipient, row["id"], channel, now))
    if skipped:
        row["skipped"] = skipped
    return Planned(recipient.id, notification_type, row, deliveries)


def _next_seq(user_id: str) -> ReturningUpdate[tuple[int]]:
    """Increment the user's last seq and return it (the row stays locked until commit)."""
    return (
        update(USERS)
        .where(USERS.c.id == user_id)
        .values(last_seq=USERS.c.last_seq + 1)
        .returning(USERS.c.last_seq)
    )


def write(
    connection: Connection,
    planned: Sequence[Planned],
    before: Sequence[Domain] = (),
) -> None:
    """Write the statements `before` (the domain rows), then each notification; sets its seq."""
    if connection.dialect.name == "postgresql":
        _write_in_one_statement(connection, planned, before)
    else:
        _write_in_turn(connection, planned, before)
    for note in planned:
        # The start of a notification's trail in the logs (broadcasts would flood them: debug).
        log.log(
            logging.DEBUG if note.type == "broadcast" else logging.INFO,
            "notification %s seq %d stored for user %s",
            note.type,
            note.seq,
            note.user_id,
            extra={"notification_id": note.id},
        )


def write_in_session(
    session: Session, planned: Sequence[Planned], before: Sequence[Domain] = ()
) -> None:
    """Write in the session's transaction, after its own pending changes; send once committed."""
    session.flush()
    write(session.connection(), planned, before)
    for note in planned:
        # A recipient loaded in this session keeps its seq true without being read again.
        user = session.identity_map.get(identity_key(User, note.user_id))
        if user is not None:
            set_committed_value(user, "last_seq", note.seq)
        for channel, ids in note.pending().items():
            for delivery_id in ids:
                dispatch_after_commit(session, channel, delivery_id)


def _write_in_one_statement(
    connection: Connection,
    planned: Sequence[Planned],
    before: Sequence[Domain],
) -> None:
    """PostgreSQL: every write as a data-modifying CTE of one statement, seqs selected back."""
    ctes: list[Any] = [statement.cte(f"w{i}") for i, statement in enumerate(before)]
    seqs = []
    for i, note in enumerate(planned):
        seq = _next_seq(note.user_id).cte(f"s{i}")
        seqs.append(seq.c.last_seq.label(f"seq{i}"))
        ctes.append(seq)
        # VALUES, not INSERT … SELECT: its parameters take the columns' types (json, timestamp).
        values = {**note.row, "seq": select(seq.c.last_seq).scalar_subquery()}
        ctes.append(insert(NOTIFICATIONS).values(values).returning(NOTIFICATIONS.c.id).cte(f"n{i}"))
        # One CTE per delivery: a multi-row VALUES is never in SQLAlchemy's compiled cache,
        # and compiling this statement afresh cost more than all the rest of the call.
        # The deliveries' foreign key is checked at the end of the statement, after n{i}.
        for j, delivery in enumerate(note.deliveries):
            row = insert(DELIVERIES).values(delivery).returning(DELIVERIES.c.id)
            ctes.append(row.cte(f"d{i}_{j}"))
    row = connection.execute(select(*seqs).add_cte(*ctes)).one()
    for note, seq in zip(planned, row, strict=True):
        note.seq = int(seq)


def _write_in_turn(
    connection: Connection,
    planned: Sequence[Planned],
    before: Sequence[Domain],
) -> None:
    """Any other database: the same writes one by one, in the caller's transaction."""
    for statement in before:
        connection.execute(statement).all()
    for note in planned:
        note.seq = int(connection.execute(_next_seq(note.user_id)).scalar_one())
        connection.execute(insert(NOTIFICATIONS).values({**note.row, "seq": note.seq}))
        if note.deliveries:
            connection.execute(insert(DELIVERIES), note.deliveries)
