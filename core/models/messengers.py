"""Telegram and VK accounts linked to users, and the one-time codes that link them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, created_column, id_column

MESSENGERS = ("telegram", "vk")


class MessengerLink(Base):
    """A user's chat on one messenger: where that channel's notifications go."""

    __tablename__ = "messenger_links"
    __table_args__ = (
        # One account per user per messenger, and one user per chat.
        UniqueConstraint("user_id", "channel", name="uq_messenger_links_user_channel"),
        UniqueConstraint("channel", "external_id", name="uq_messenger_links_channel_external"),
    )

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    # Telegram's chat id, VK's peer id, as text.
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # What the user is called there (@username, a VK name), for the settings page.
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_column()


class LinkCode(Base):
    """A one-time code a user sends to the bot or the community to link that account."""

    __tablename__ = "link_codes"
    __table_args__ = (Index("ix_link_codes_user_id", "user_id"),)

    # Only a hash is kept: a database reader cannot link someone else's chat with it.
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
