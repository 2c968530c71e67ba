"""Daily platform statistics: compute a day's numbers and upsert its one row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Campaign, Channel, PlatformStats, User, Withdrawal
from core.models.campaigns import CAMPAIGN_STATES
from core.models.users import ROLES
from core.services.jobs.base import JobContext, Scope, insert_for
from core.services.money import format_minor


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC start and (exclusive) end of a day."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def compute(session: Session, day: date, now: datetime) -> dict[str, Any]:
    """The day's row: counts as they are now, money flows of the day up to `now`."""
    start, end = day_bounds(day)
    end = min(end, now)
    users = dict(session.execute(select(User.role, func.count()).group_by(User.role)).all())
    campaigns = dict(
        session.execute(select(Campaign.status, func.count()).group_by(Campaign.status)).all()
    )
    turnover, fees = session.execute(
        select(func.coalesce(func.sum(Campaign.price), 0), func.coalesce(func.sum(Campaign.fee), 0))
        .where(Campaign.status == "completed")
        .where(Campaign.completed_at >= start, Campaign.completed_at < end)
    ).one()
    pending_count, pending_amount = session.execute(
        select(func.count(), func.coalesce(func.sum(Withdrawal.amount), 0)).where(
            Withdrawal.status == "pending"
        )
    ).one()
    row: dict[str, Any] = {f"users_{role}": int(users.get(role, 0)) for role in ROLES}
    row.update({f"campaigns_{state}": int(campaigns.get(state, 0)) for state in CAMPAIGN_STATES})
    row.update(
        day=day,
        channels=int(session.scalar(select(func.count()).select_from(Channel)) or 0),
        turnover=int(turnover),
        fees=int(fees),
        withdrawals_pending_count=int(pending_count),
        withdrawals_pending_amount=int(pending_amount),
        computed_at=now,
    )
    return row


def upsert(session: Session, row: dict[str, Any]) -> None:
    """Write the day's row, replacing an earlier computation of the same day."""
    table = PlatformStats.__table__
    statement = insert_for(session, table).values(**row)
    statement = statement.on_conflict_do_update(
        index_elements=["day"],
        set_={name: statement.excluded[name] for name in row if name != "day"},
    )
    session.execute(statement)


def update_day(session: Session, day: date, now: datetime) -> dict[str, Any]:
    """Compute and upsert one day; returns the row written."""
    row = compute(session, day, now)
    upsert(session, row)
    return row


def run(scope: Scope, ctx: JobContext) -> dict[str, Any]:
    """The job: close the day that ended when the period began (a manual run: today so far)."""
    day = ctx.now.date() if ctx.manual else (ctx.period - timedelta(days=1)).date()
    with scope() as session:
        row = update_day(session, day, ctx.now)
    users = sum(row[f"users_{role}"] for role in ROLES)
    return {
        "day": day.isoformat(),
        "users": users,
        "channels": row["channels"],
        "turnover": format_minor(row["turnover"]),
        "fees": format_minor(row["fees"]),
        "withdrawals_pending": row["withdrawals_pending_count"],
    }


def latest(session: Session) -> PlatformStats | None:
    """The most recent day's row, if any."""
    return session.scalars(
        select(PlatformStats).order_by(PlatformStats.day.desc()).limit(1)
    ).first()


def series(session: Session, days: int, today: date) -> Sequence[PlatformStats]:
    """The rows of the last `days` days up to `today`, oldest first (missing days are absent)."""
    since = today - timedelta(days=days - 1)
    query = select(PlatformStats).where(PlatformStats.day >= since, PlatformStats.day <= today)
    return session.scalars(query.order_by(PlatformStats.day)).all()


def to_dict(row: PlatformStats) -> dict[str, Any]:
    """The API's shape of a row: grouped counts, money as two-decimal strings."""
    return {
        "day": row.day.isoformat(),
        "users": {
            "advertiser": row.users_advertiser,
            "channel_owner": row.users_channel_owner,
            "admin": row.users_admin,
            "total": row.users_advertiser + row.users_channel_owner + row.users_admin,
        },
        "channels": row.channels,
        "campaigns": {state: getattr(row, f"campaigns_{state}") for state in CAMPAIGN_STATES},
        "turnover": format_minor(row.turnover),
        "fees": format_minor(row.fees),
        "withdrawals_pending": {
            "count": row.withdrawals_pending_count,
            "amount": format_minor(row.withdrawals_pending_amount),
        },
        "computed_at": row.computed_at.isoformat().replace("+00:00", "Z"),
    }
