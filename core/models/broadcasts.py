"""Admin broadcasts: one message fanned out to every user by a worker, in batches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, created_column, id_column

BROADCAST_STATES = ("queued", "running", "done", "failed")


class Broadcast(Base):
    """One broadcast and how far its fan-out has gone (users are walked in id order)."""

    __tablename__ = "broadcasts"

    id: Mapped[str] = id_column()
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="queued")
    # Users when it was asked for; `stored` counts the notifications written so far.
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    stored: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Connected users it was pushed to live (the others read it on their next catch-up).
    pushed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The last user id stored: the next batch starts after it, so a retry resumes there.
    cursor: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = created_column()
    # A running fan-out renews this with every batch; a stale one is taken over by the sweeper.
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
