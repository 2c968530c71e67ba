"""Users: advertisers, channel owners and admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, created_column, id_column

ROLES = ("advertiser", "channel_owner", "admin")


class User(Base):
    """A person with a role, a locale for their messages and a balance in minor units."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("role IN ('advertiser', 'channel_owner', 'admin')", name="role_known"),
    )

    id: Mapped[str] = id_column()
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(128), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    locale: Mapped[str] = mapped_column(String(5), nullable=False, default="ru")
    balance: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # The last notification seq handed out; bumped under the row lock so seqs have no gaps.
    last_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = created_column()
    # The channels the user turned off, {type: {channel: false}}; what is absent follows the
    # registry's defaults (core/notification_types.py). On the user row, because notify() has
    # the row in hand already: choosing the channels costs the write path no round trip.
    notification_prefs: Mapped[dict[str, Any]] = mapped_column(
        JSON, nullable=False, default=dict, server_default="{}"
    )
    # Set when the provider reported the address undeliverable (a bounce, a drop); emails are
    # then skipped and recorded as suppressed until the user changes the address.
    email_undeliverable_at: Mapped[datetime | None]
    # The messengers the user linked an account on (kept by core/services/messengers.py beside
    # messenger_links), so notify() knows where to send without a query.
    linked_messengers: Mapped[list[str]] = mapped_column(
        JSON, nullable=False, default=list, server_default="[]"
    )
    email_undeliverable_reason: Mapped[str | None] = mapped_column(String(500))
