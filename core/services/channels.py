"""Channels: created by their owners, listed for everyone signed in."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Channel, User
from core.services.errors import Forbidden, NotFound


def create_channel(
    session: Session, owner: User, *, name: str, platform: str, url: str, price: int
) -> Channel:
    """Create a channel owned by a channel owner."""
    if owner.role != "channel_owner":
        raise Forbidden("only channel owners can create channels")
    channel = Channel(owner_id=owner.id, name=name, platform=platform, url=url, price=price)
    session.add(channel)
    session.flush()
    return channel


def list_channels(session: Session, *, owner_id: str | None = None) -> Sequence[Channel]:
    """Every channel, newest first, optionally only one owner's."""
    query = select(Channel).order_by(Channel.created_at.desc())
    if owner_id:
        query = query.where(Channel.owner_id == owner_id)
    return session.scalars(query).all()


def get_channel(session: Session, channel_id: str) -> Channel:
    """A channel by id."""
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound("channel not found", details={"channel_id": channel_id})
    return channel
