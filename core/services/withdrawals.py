"""Withdrawals: reserve on request, settle or return on an admin's decision."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from core.db import as_changed
from core.models import User, Withdrawal
from core.models.base import utcnow
from core.services import balances, notification_writes
from core.services.errors import (
    DomainError,
    Forbidden,
    InsufficientFunds,
    InvalidTransition,
    NotFound,
)
from core.services.money import format_minor
from core.services.notification_writes import RecipientRow


def request_withdrawal(session: Session, user: User, amount: int) -> Withdrawal:
    """Reserve `amount` from a channel owner's balance at once."""
    if user.role != "channel_owner":
        raise Forbidden("only channel owners can withdraw")
    if amount <= 0:
        raise DomainError("amount must be positive", details={"amount_minor": amount})
    # `user` was loaded before the lock (the signed-in user): check the balance as it is now.
    locked = session.scalars(
        select(User)
        .where(User.id == user.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if locked.balance < amount:
        raise InsufficientFunds(
            "balance too low for this withdrawal",
            details={"balance_minor": locked.balance, "amount_minor": amount},
        )
    locked.balance -= amount
    withdrawal = Withdrawal(user_id=user.id, amount=amount)
    session.add(withdrawal)
    session.flush()
    return withdrawal


def list_withdrawals(session: Session, user: User) -> Sequence[Withdrawal]:
    """A user's own withdrawals (an admin's list is every withdrawal), newest first."""
    query = select(Withdrawal).order_by(Withdrawal.created_at.desc())
    if user.role != "admin":
        query = query.where(Withdrawal.user_id == user.id)
    return session.scalars(query).all()


WITHDRAWALS = Withdrawal.__table__


@cache
def _decision_context() -> Select[Any]:
    """The withdrawal (row locked) and its owner as a recipient, in one query.

    Built once, with the parameter `withdrawal_id` (see notification_writes).
    """
    owner = User.__table__.alias("owner")
    return (
        select(*WITHDRAWALS.c, *RecipientRow.columns(owner, "owner_"))
        .join_from(WITHDRAWALS, owner, owner.c.id == WITHDRAWALS.c.user_id)
        .where(WITHDRAWALS.c.id == bindparam("withdrawal_id"))
        .with_for_update(of=WITHDRAWALS)
    )


def _decide(session: Session, admin: User, withdrawal_id: str, to: str) -> Withdrawal:
    """Move a pending withdrawal to processed or rejected, as an admin; the owner hears.

    One locked read, then the change and the notification in one statement; a rejection
    first returns the amount onto the owner's balance.
    """
    if admin.role != "admin":
        raise NotFound("withdrawal not found")
    row = session.execute(_decision_context(), {"withdrawal_id": withdrawal_id}).first()
    if row is None:
        raise NotFound("withdrawal not found", details={"withdrawal_id": withdrawal_id})
    if row.status != "pending":
        raise InvalidTransition(
            f"cannot move a {row.status} withdrawal to {to}",
            details={"from": row.status, "to": to},
        )
    if to == "rejected":
        balances.credit(session, row.user_id, row.amount)
    changes = {"status": to, "decided_at": utcnow(), "decided_by": admin.id}
    withdrawal = as_changed(session, Withdrawal, row, changes)
    recipient = RecipientRow.from_row(row, "owner_")
    data = {"withdrawal_id": withdrawal.id, "amount": format_minor(withdrawal.amount)}
    # Required types: the owner hears of every decision on their money.
    planned = notification_writes.plan(recipient, f"withdrawal_{to}", data)
    domain = notification_writes.DomainRow(WITHDRAWALS, changes, id=withdrawal.id)
    notification_writes.write_in_session(session, [planned], before=[domain])
    return withdrawal


def process(session: Session, admin: User, withdrawal_id: str) -> Withdrawal:
    """An admin marks a withdrawal paid; the reserved amount leaves for good; the owner hears."""
    return _decide(session, admin, withdrawal_id, "processed")


def reject(session: Session, admin: User, withdrawal_id: str) -> Withdrawal:
    """An admin rejects a withdrawal; the amount returns to the balance; the owner hears."""
    return _decide(session, admin, withdrawal_id, "rejected")
