"""Notifications (the inbox) and their per-channel delivery records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, created_column, id_column

# `suppressed`: never sent, on purpose (the address bounced); final, like sent and failed.
# (A channel with nowhere to go at all, e.g. no Telegram account linked, has no row: it is
# recorded in `Notification.skipped` and shows as `skipped`.)
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "suppressed")


class Notification(Base):
    """One message to one user, numbered by a per-user gap-free `seq`."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "seq", name="uq_notifications_user_seq"),
        Index("ix_notifications_created_at", "created_at"),
    )

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    type: Mapped[str] = mapped_column(String(40), nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    campaign_id: Mapped[str | None] = mapped_column(String(36))
    # A snapshot of what the message is about (amounts, names), never re-read later.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = created_column()
    read_at: Mapped[datetime | None]
    # Channels the type goes out on that had nowhere to go, with why ({"vk": "no vk account
    # linked"}): recorded here rather than as delivery rows that would never be sent.
    skipped: Mapped[dict[str, str] | None] = mapped_column(JSON)

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="notification", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def timeline(self) -> list[Delivery | Skipped]:
        """Every channel of the notification: its delivery rows, then the channels skipped."""
        skipped = [
            Skipped(channel, reason, self.created_at)
            for channel, reason in sorted((self.skipped or {}).items())
        ]
        return [*self.deliveries, *skipped]


@dataclass(frozen=True)
class Skipped:
    """A channel that had nowhere to go when the notification was stored, shaped like a row."""

    channel: str
    error: str
    created_at: datetime
    status: str = "skipped"
    attempts: int = 0
    provider_status: str | None = None
    provider_message_id: str | None = None
    claimed_at: datetime | None = None

    @property
    def finished_at(self) -> datetime:
        """Skipped at once."""
        return self.created_at


class Delivery(Base):
    """One notification on one channel: pending → sending → sent | failed, or suppressed."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "channel", name="uq_deliveries_notification_channel"),
        Index("ix_deliveries_status_created", "status", "created_at"),
    )

    id: Mapped[str] = id_column()
    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), nullable=False
    )
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = created_column()
    claimed_at: Mapped[datetime | None]
    # A provider's wait (429's retry_after, a refused token): nobody claims it before then.
    not_before: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # What the provider said later (delivered, bounce…), for email.
    provider_status: Mapped[str | None] = mapped_column(String(30))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))

    notification: Mapped[Notification] = relationship(back_populates="deliveries")
