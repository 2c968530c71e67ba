"""Campaigns: one placement request of an advertiser in a channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, created_column, id_column
from core.models.channels import Channel

CAMPAIGN_STATES = ("pending", "accepted", "rejected", "completed", "cancelled")


class Campaign(Base):
    """A placement request and its state; money in minor units."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint(
            "status IN ('pending', 'accepted', 'rejected', 'completed', 'cancelled')",
            name="status_known",
        ),
    )

    id: Mapped[str] = id_column()
    advertiser_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True, nullable=False)
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id"), index=True, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="pending", index=True)
    fee: Mapped[int | None] = mapped_column(BigInteger)
    payout: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = created_column()
    completed_at: Mapped[datetime | None]

    channel: Mapped[Channel] = relationship(lazy="joined")
