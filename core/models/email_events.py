"""Provider events already acted on, so a replayed SendGrid event has no second effect."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, created_column


class SeenEmailEvent(Base):
    """One SendGrid event (its `sg_event_id`) that changed a user: an opt-out or a bounce."""

    __tablename__ = "email_events_seen"
    __table_args__ = (Index("ix_email_events_seen_created_at", "created_at"),)

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = created_column()
