"""The audit trail of admin actions: who did what, when, and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Identity, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, created_column


class AuditEvent(Base):
    """One admin action, written in the transaction that did it; never changed afterwards."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_actor_id", "actor_id"),)

    # An increasing number: the order events happened in, and the cursor of the paged list.
    # SQLite numbers only an INTEGER primary key by itself; PostgreSQL gets a bigint identity.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), Identity(), primary_key=True
    )
    at: Mapped[datetime] = created_column()
    # Kept as text, not a foreign key: the trail outlives the accounts it mentions.
    actor_id: Mapped[str | None] = mapped_column(String(36))
    actor_email: Mapped[str | None] = mapped_column(String(254))
    # broadcast.create, withdrawal.process, withdrawal.reject, admin.create
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(30))
    target_id: Mapped[str | None] = mapped_column(String(36))
    # The client address (or "cli"), and its User-Agent.
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
