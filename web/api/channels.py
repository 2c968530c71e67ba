"""Channels: owners create them, everyone signed in lists them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_smorest import Blueprint

from core.db import session_scope
from core.models import Channel
from core.services import channels
from core.services.money import to_minor
from web.auth import actor, auth_required
from web.schemas import ChannelIn, ChannelOut, ChannelQuery

blp = Blueprint("channels", __name__, url_prefix="/api/channels", description="Channels")


@blp.route("", methods=["POST"])
@auth_required
@blp.arguments(ChannelIn())
@blp.response(201, ChannelOut)
@blp.doc(security=[{"bearer": []}])
def create(body: dict[str, Any]) -> Channel:
    """Create a channel (channel owners only)."""
    with session_scope() as session:
        owner = actor(session, "channel_owner")
        return channels.create_channel(
            session,
            owner,
            name=body["name"],
            platform=body["platform"],
            url=body["url"],
            price=to_minor(body["price"]),
        )


@blp.route("", methods=["GET"])
@auth_required
@blp.arguments(ChannelQuery(), location="query")
@blp.response(200, ChannelOut(many=True))
@blp.doc(security=[{"bearer": []}])
def list_all(query: dict[str, Any]) -> Sequence[Channel]:
    """Every channel, or only the caller's with `?mine=true`."""
    with session_scope() as session:
        user = actor(session)
        return channels.list_channels(session, owner_id=user.id if query["mine"] else None)
