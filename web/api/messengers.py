"""The signed-in user links and unlinks their Telegram and VK accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint

from core.db import session_scope
from core.services import messengers
from core.services.errors import NotFound
from core.settings import Settings
from web.auth import actor, auth_required
from web.schemas import ErrorOut, TelegramLinkOut, VkLinkOut

blp = Blueprint("messengers", __name__, url_prefix="/api/users/me", description="Telegram and VK")
SECURITY = [{"bearer": []}]
NOT_LINKED = "not_linked: nothing is linked on this messenger"
# Where VK users are sent without VK_GROUP_ID: the marketplace's community by its short name.
DEFAULT_VK_COMMUNITY = "admarket"


def _start(channel: str) -> tuple[str, datetime]:
    """A fresh code of the signed-in user for `channel`, and when it expires."""
    settings: Settings = current_app.config["SETTINGS"]
    with session_scope() as session:
        user = actor(session)
        return messengers.start_link(session, settings, user.id, channel)


def _unlink(channel: str) -> None:
    """Forget the signed-in user's chat on `channel`, or refuse with 404 not_linked."""
    with session_scope() as session:
        if not messengers.unlink(session, g.user_id, channel, reason="unlinked by the user"):
            raise NotFound(f"no {channel} account is linked", code="not_linked")


def vk_community(settings: Settings) -> str:
    """The community's vk.me name: club<id> when VK_GROUP_ID is set."""
    return f"club{settings.VK_GROUP_ID}" if settings.VK_GROUP_ID else DEFAULT_VK_COMMUNITY


@blp.route("/telegram/link", methods=["POST"])
@auth_required
@blp.response(201, TelegramLinkOut)
@blp.doc(security=SECURITY)
def link_telegram() -> dict[str, Any]:
    """A one-time link that opens the bot; pressing Start there links that chat.

    Each call makes the links given before stop working.
    """
    code, expires_at = _start(messengers.TELEGRAM)
    bot = current_app.config["SETTINGS"].TELEGRAM_BOT_USERNAME
    return {"url": f"https://t.me/{bot}?start={code}", "expires_at": expires_at}


@blp.route("/telegram", methods=["DELETE"])
@auth_required
@blp.response(204)
@blp.alt_response(404, schema=ErrorOut, description=NOT_LINKED)
@blp.doc(security=SECURITY)
def unlink_telegram() -> None:
    """Stop sending to the linked Telegram chat."""
    _unlink(messengers.TELEGRAM)


@blp.route("/vk/link", methods=["POST"])
@auth_required
@blp.response(201, VkLinkOut)
@blp.doc(security=SECURITY)
def link_vk() -> dict[str, Any]:
    """A one-time code to send to the community in VK messages; its dialog is then linked.

    Each call makes the codes given before stop working.
    """
    code, expires_at = _start(messengers.VK)
    community = vk_community(current_app.config["SETTINGS"])
    return {"code": code, "url": f"https://vk.me/{community}", "expires_at": expires_at}


@blp.route("/vk", methods=["DELETE"])
@auth_required
@blp.response(204)
@blp.alt_response(404, schema=ErrorOut, description=NOT_LINKED)
@blp.doc(security=SECURITY)
def unlink_vk() -> None:
    """Stop sending to the linked VK dialog."""
    _unlink(messengers.VK)
