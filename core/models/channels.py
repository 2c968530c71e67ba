"""Channels where advertisers buy placements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, created_column, id_column
from core.models.users import User


class Channel(Base):
    """A channel run by a channel owner, with its price per placement in minor units."""

    __tablename__ = "channels"
    __table_args__ = (CheckConstraint("price > 0", name="price_positive"),)

    id: Mapped[str] = id_column()
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    platform: Mapped[str] = mapped_column(String(30), nullable=False)
    url: Mapped[str] = mapped_column(String(500), nullable=False)
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = created_column()

    owner: Mapped[User] = relationship(lazy="joined")
