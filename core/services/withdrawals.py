"""Withdrawals: reserve on request, settle or return on an admin's decision."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User, Withdrawal
from core.models.base import utcnow
from core.services.errors import (
    DomainError,
    Forbidden,
    InsufficientFunds,
    InvalidTransition,
    NotFound,
)
from core.services.money import format_minor
from core.services.notifications import notify


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


def _decide(session: Session, admin: User, withdrawal_id: str, to: str) -> Withdrawal:
    """Move a pending withdrawal to processed or rejected, as an admin."""
    if admin.role != "admin":
        raise NotFound("withdrawal not found")
    query = (
        select(Withdrawal)
        .where(Withdrawal.id == withdrawal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    withdrawal = session.scalars(query).one_or_none()
    if withdrawal is None:
        raise NotFound("withdrawal not found", details={"withdrawal_id": withdrawal_id})
    if withdrawal.status != "pending":
        raise InvalidTransition(
            f"cannot move a {withdrawal.status} withdrawal to {to}",
            details={"from": withdrawal.status, "to": to},
        )
    withdrawal.status = to
    withdrawal.decided_at = utcnow()
    withdrawal.decided_by = admin.id
    return withdrawal


def _tell_owner(session: Session, owner: User, withdrawal: Withdrawal) -> None:
    """Notify the owner of the decision on their money (a required type)."""
    data = {"withdrawal_id": withdrawal.id, "amount": format_minor(withdrawal.amount)}
    notify(session, owner, f"withdrawal_{withdrawal.status}", data)


def _owner(session: Session, withdrawal: Withdrawal) -> User:
    """The withdrawal's owner, locked: their balance may change and their seq is taken next."""
    return session.scalars(
        select(User)
        .where(User.id == withdrawal.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def process(session: Session, admin: User, withdrawal_id: str) -> Withdrawal:
    """An admin marks a withdrawal paid; the reserved amount leaves for good; the owner hears."""
    withdrawal = _decide(session, admin, withdrawal_id, "processed")
    _tell_owner(session, _owner(session, withdrawal), withdrawal)
    return withdrawal


def reject(session: Session, admin: User, withdrawal_id: str) -> Withdrawal:
    """An admin rejects a withdrawal; the amount returns to the balance; the owner hears."""
    withdrawal = _decide(session, admin, withdrawal_id, "rejected")
    owner = _owner(session, withdrawal)
    owner.balance += withdrawal.amount
    _tell_owner(session, owner, withdrawal)
    return withdrawal
