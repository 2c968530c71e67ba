"""Withdrawals: owners request, admins decide."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from core.db import session_scope
from core.models import User, Withdrawal
from core.services import audit, withdrawals
from core.services.money import to_minor
from web.auth import actor, auth_required
from web.limits import request_origin
from web.schemas import WithdrawalIn, WithdrawalOut

blp = Blueprint("withdrawals", __name__, url_prefix="/api/withdrawals", description="Withdrawals")
SECURITY = [{"bearer": []}]


@blp.route("", methods=["POST"])
@auth_required
@blp.arguments(WithdrawalIn())
@blp.response(201, WithdrawalOut)
@blp.doc(security=SECURITY)
def create(body: dict[str, Any]) -> Withdrawal:
    """Request a withdrawal; the amount is reserved from the balance at once."""
    with session_scope() as session:
        owner = actor(session, "channel_owner")
        return withdrawals.request_withdrawal(session, owner, to_minor(body["amount"]))


@blp.route("", methods=["GET"])
@auth_required
@blp.response(200, WithdrawalOut(many=True))
@blp.doc(security=SECURITY)
def list_own() -> Sequence[Withdrawal]:
    """The caller's withdrawals (every withdrawal, for an admin)."""
    with session_scope() as session:
        return withdrawals.list_withdrawals(session, actor(session))


@blp.route("/<withdrawal_id>/process", methods=["POST"])
@auth_required
@blp.response(200, WithdrawalOut)
@blp.doc(security=SECURITY)
def process(withdrawal_id: str) -> Withdrawal:
    """An admin marks a withdrawal as paid."""
    return _decide(withdrawal_id, withdrawals.process, "withdrawal.process")


@blp.route("/<withdrawal_id>/reject", methods=["POST"])
@auth_required
@blp.response(200, WithdrawalOut)
@blp.doc(security=SECURITY)
def reject(withdrawal_id: str) -> Withdrawal:
    """An admin rejects a withdrawal; the amount returns to the owner's balance."""
    return _decide(withdrawal_id, withdrawals.reject, "withdrawal.reject")


def _decide(
    withdrawal_id: str, decide: Callable[[Session, User, str], Withdrawal], action: str
) -> Withdrawal:
    """An admin's decision on a withdrawal, recorded in the audit trail in the same commit."""
    with session_scope() as session:
        admin = actor(session, "admin")
        done = decide(session, admin, withdrawal_id)
        audit.record(
            session, admin, action, "withdrawal", done.id, request_origin(),
            amount_minor=done.amount, owner_id=done.user_id,
        )  # fmt: skip
        return done
