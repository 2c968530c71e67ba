"""Daily platform statistics: one row per UTC day, upserted by the daily job."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class PlatformStats(Base):
    """Counts as of `computed_at`, and the day's money flows in integer minor units."""

    __tablename__ = "platform_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    users_advertiser: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    users_channel_owner: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    users_admin: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    channels: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    campaigns_pending: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    campaigns_accepted: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    campaigns_rejected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    campaigns_completed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    campaigns_cancelled: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Prices of the campaigns completed during the day, and the platform's fees on them.
    turnover: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    fees: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    withdrawals_pending_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    withdrawals_pending_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    computed_at: Mapped[datetime] = mapped_column(nullable=False)
