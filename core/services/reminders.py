"""Remind every admin of withdrawals pending too long, at most once per withdrawal per window."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.models import User, Withdrawal, WithdrawalReminder
from core.models.base import new_id
from core.services.jobs.base import JobContext, Scope, insert_for
from core.services.money import format_minor
from core.services.notifications import notify

# The notification lists this many withdrawals, oldest first; count and total cover them all.
LIST_LIMIT = 50


def overdue(session: Session, window: datetime, cutoff: datetime) -> list[tuple[Withdrawal, str]]:
    """Pending withdrawals created before `cutoff` and not yet reminded in `window`."""
    reminded = exists().where(
        WithdrawalReminder.withdrawal_id == Withdrawal.id, WithdrawalReminder.window == window
    )
    query = (
        select(Withdrawal, User.name)
        .join(User, User.id == Withdrawal.user_id)
        .where(Withdrawal.status == "pending", Withdrawal.created_at < cutoff, ~reminded)
        .order_by(Withdrawal.created_at, Withdrawal.id)
    )
    return [(w, name) for w, name in session.execute(query)]


def _claim(session: Session, window: datetime, ids: list[str], now: datetime) -> set[str]:
    """Record the withdrawals as reminded in `window`; returns those no other run had taken."""
    table = WithdrawalReminder.__table__
    rows = [
        {"id": new_id(), "withdrawal_id": wid, "window": window, "created_at": now} for wid in ids
    ]
    # ON CONFLICT DO NOTHING: a concurrent run's committed rows make ours drop out, and
    # PostgreSQL makes us wait for its uncommitted ones instead of reminding twice.
    statement = (
        insert_for(session, table)
        .on_conflict_do_nothing(index_elements=["withdrawal_id", "window"])
        .returning(table.c.withdrawal_id)
    )
    return set(session.execute(statement, rows).scalars().all())


def payload(due: list[tuple[Withdrawal, str]], now: datetime) -> dict[str, Any]:
    """The notification's snapshot: count, total and the oldest withdrawals, money as strings."""
    items = [
        {
            "id": w.id,
            "owner_name": name,
            "amount": format_minor(w.amount),
            "age_hours": math.floor((now - w.created_at).total_seconds() / 3600),
        }
        for w, name in due[:LIST_LIMIT]
    ]
    return {
        "count": len(due),
        "total": format_minor(sum(w.amount for w, _ in due)),
        "withdrawals": items,
    }


def remind(session: Session, window: datetime, now: datetime, after_hours: float) -> dict[str, int]:
    """Notify every admin (live + email) of the overdue withdrawals not yet reminded in window."""
    admins = session.scalars(select(User).where(User.role == "admin").order_by(User.id)).all()
    due = overdue(session, window, now - timedelta(hours=after_hours))
    if not admins or not due:
        # Nothing is recorded without an admin to tell, so the first admin made hears of it.
        return {"withdrawals": 0, "admins": len(admins), "notifications": 0}
    won = _claim(session, window, [w.id for w, _ in due], now)
    due = [(w, name) for w, name in due if w.id in won]
    if not due:
        return {"withdrawals": 0, "admins": len(admins), "notifications": 0}
    data = payload(due, now)
    for admin in admins:
        notify(session, admin, "withdrawal_reminder", data)
    return {"withdrawals": len(due), "admins": len(admins), "notifications": len(admins)}


def run(scope: Scope, ctx: JobContext) -> dict[str, Any]:
    """The job: one reminder per admin for this window (the job's period), in one transaction."""
    with scope() as session:
        counts = remind(session, ctx.period, ctx.now, ctx.settings.WITHDRAWAL_REMINDER_AFTER_HOURS)
    return {**counts, "window": ctx.period.isoformat()}
