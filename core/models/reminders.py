"""Which withdrawal was reminded in which reminder window, so none is reminded twice in one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, created_column, id_column


class WithdrawalReminder(Base):
    """A withdrawal's presence in one window's reminder, written with the admins' notifications."""

    __tablename__ = "withdrawal_reminders"
    __table_args__ = (
        UniqueConstraint("withdrawal_id", "window", name="uq_withdrawal_reminders_window"),
    )

    id: Mapped[str] = id_column()
    withdrawal_id: Mapped[str] = mapped_column(
        ForeignKey("withdrawals.id", ondelete="CASCADE"), nullable=False
    )
    # The start of the reminder job's period (UTC).
    window: Mapped[datetime] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = created_column()
