"""Users: advertisers, channel owners and admins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, created_column, id_column

ROLES = ("advertiser", "channel_owner", "admin")
LOCALES = ("ru", "en")


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
