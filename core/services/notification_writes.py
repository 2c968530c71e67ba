"""Storing notifications: planned in Python, written with their seq and deliveries at once.

A notification is three writes that belong together: the recipient's next `seq` (taken under
the user row's write lock, so seqs follow commit order), the notification row, and one delivery
row per channel the recipient wants. On PostgreSQL they go out as one statement of
data-modifying CTEs, together with the domain row that caused them (a campaign), so creating a
campaign costs one round trip to write instead of six (docs/BENCHMARKS.md, issue 15). Other
databases (SQLite) run the same statements one after another inside the caller's transaction.

That statement is built once per shape (which columns, how many deliveries) with bound
parameters in place of the values: building it afresh and computing its cache key each time
cost more CPU than everything else SQLAlchemy does for the call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from core import notification_types
from core.models import Delivery, Notification, User
from core.models.base import new_id, utcnow
from core.models.messengers import MESSENGERS
from core.services import messages, preferences
from core.services.dispatch import dispatch_after_commit

log = logging.getLogger(__name__)

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

    @staticmethod
    def columns(users: Any, prefix: str) -> list[Any]:
        """These columns of a users table (or alias), labelled `<prefix><name>` for a query."""
        return [users.c[name].label(f"{prefix}{name}") for name in RECIPIENT_COLUMNS]

    @classmethod
    def from_row(cls, row: Any, prefix: str) -> RecipientRow:
        """The recipient read by a query that selected columns(…, prefix)."""
        return cls(**{name: row._mapping[f"{prefix}{name}"] for name in RECIPIENT_COLUMNS})


# A loaded User has every one of those attributes, so either will do.
Recipient = User | RecipientRow
RECIPIENT_COLUMNS = tuple(RecipientRow.__dataclass_fields__)


@dataclass(frozen=True)
class DomainRow:
    """A domain row (a campaign) written with the notifications it causes.

    Inserted with `values`, or, given the `id` of a row that exists, updated with them. The
    statement must not touch a users row (the seq CTEs update those; PostgreSQL applies only
    one of two changes to a row within one statement).
    """

    table: Table
    values: dict[str, Any]
    id: str | None = None


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


# The columns of every delivery row _delivery makes, in its order.
DELIVERY_COLUMNS = ("id", "notification_id", "channel", "status", "attempts", "created_at",
                    "finished_at", "error")  # fmt: skip


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


def _next_seq(user_id: Any) -> Any:
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
    before: Sequence[DomainRow] = (),
) -> None:
    """Write the rows `before` (the domain's), then each notification; sets its seq."""
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
    session: Session, planned: Sequence[Planned], before: Sequence[DomainRow] = ()
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


# A statement's shape: each domain row's table, columns and whether it is an update, then each
# notification's columns and number of deliveries. Every value is a bound parameter named
# after its place.
Shape = tuple[
    tuple[tuple[Table, tuple[str, ...], bool], ...], tuple[tuple[tuple[str, ...], int], ...]
]


def _shape(planned: Sequence[Planned], before: Sequence[DomainRow]) -> Shape:
    """What the statement for these rows looks like, values aside."""
    return (
        tuple((row.table, tuple(row.values), row.id is not None) for row in before),
        tuple((tuple(note.row), len(note.deliveries)) for note in planned),
    )


def _bound(table: Table, columns: Sequence[str], prefix: str) -> dict[str, Any]:
    """A VALUES clause of bound parameters `<prefix>_<column>`, typed as the columns."""
    return {name: bindparam(f"{prefix}_{name}", type_=table.c[name].type) for name in columns}


def _parameters(values: dict[str, Any], prefix: str, into: dict[str, Any]) -> None:
    """Add a row's values under the names _bound gave their parameters."""
    for name, value in values.items():
        into[f"{prefix}_{name}"] = value


@lru_cache(maxsize=64)
def _statement(shape: Shape) -> Select[Any]:
    """PostgreSQL: every write of that shape as a data-modifying CTE, the seqs selected back."""
    domain, notes = shape
    ctes: list[Any] = []
    for i, (table, columns, existing) in enumerate(domain):
        values = _bound(table, columns, f"w{i}")
        if existing:
            key = bindparam(f"key{i}", type_=table.c.id.type)
            write: Any = update(table).where(table.c.id == key).values(values)
        else:
            write = insert(table).values(values)
        ctes.append(write.returning(table.c.id).cte(f"w{i}"))
    seqs = []
    for i, (columns, deliveries) in enumerate(notes):
        seq = _next_seq(bindparam(f"u{i}", type_=USERS.c.id.type)).cte(f"s{i}")
        seqs.append(seq.c.last_seq.label(f"seq{i}"))
        ctes.append(seq)
        # VALUES, not INSERT … SELECT: its parameters take the columns' types (json, timestamp).
        values = {
            **_bound(NOTIFICATIONS, columns, f"n{i}"),
            "seq": select(seq.c.last_seq).scalar_subquery(),
        }
        ctes.append(insert(NOTIFICATIONS).values(values).returning(NOTIFICATIONS.c.id).cte(f"n{i}"))
        # One CTE per delivery: a multi-row VALUES would need a statement per row count too.
        # The deliveries' foreign key is checked at the end of the statement, after n{i}.
        for j in range(deliveries):
            row = insert(DELIVERIES).values(_bound(DELIVERIES, DELIVERY_COLUMNS, f"d{i}_{j}"))
            ctes.append(row.returning(DELIVERIES.c.id).cte(f"d{i}_{j}"))
    return select(*seqs).add_cte(*ctes)


def _write_in_one_statement(
    connection: Connection,
    planned: Sequence[Planned],
    before: Sequence[DomainRow],
) -> None:
    """PostgreSQL: the statement of this shape, run with this call's values; seqs read back."""
    parameters: dict[str, Any] = {}
    for i, domain_row in enumerate(before):
        _parameters(domain_row.values, f"w{i}", parameters)
        if domain_row.id is not None:
            parameters[f"key{i}"] = domain_row.id
    for i, note in enumerate(planned):
        parameters[f"u{i}"] = note.user_id
        _parameters(note.row, f"n{i}", parameters)
        for j, delivery in enumerate(note.deliveries):
            _parameters(delivery, f"d{i}_{j}", parameters)
    row = connection.execute(_statement(_shape(planned, before)), parameters).one()
    for note, seq in zip(planned, row, strict=True):
        note.seq = int(seq)


def _write_in_turn(
    connection: Connection,
    planned: Sequence[Planned],
    before: Sequence[DomainRow],
) -> None:
    """Any other database: the same writes one by one, in the caller's transaction."""
    for domain_row in before:
        table = domain_row.table
        if domain_row.id is None:
            connection.execute(insert(table), domain_row.values)
        else:
            where = table.c.id == domain_row.id
            connection.execute(update(table).where(where).values(domain_row.values))
    for note in planned:
        note.seq = int(connection.execute(_next_seq(note.user_id)).scalar_one())
        connection.execute(insert(NOTIFICATIONS).values({**note.row, "seq": note.seq}))
        if note.deliveries:
            connection.execute(insert(DELIVERIES), note.deliveries)
