"""Logins: one per sign-in, the family of refresh tokens that rotate from it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, created_column, id_column


class Login(Base):
    """A signed-in device: the one refresh token it may use next, and whether it was ended."""

    __tablename__ = "logins"
    __table_args__ = (Index("ix_logins_user_id", "user_id"),)

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    # The jti of the only refresh token that may be traded next; the one before it is still
    # honoured for a few seconds (two tabs refreshing at once), any older one is a reuse.
    refresh_jti: Mapped[str] = mapped_column(String(64), nullable=False)
    previous_jti: Mapped[str | None] = mapped_column(String(64))
    rotated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    revoked_at: Mapped[datetime | None]
    # logout, refresh_token_reused, password_changed, password_reset
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
