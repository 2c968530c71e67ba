"""Messages from the messengers: Telegram's bot webhook and VK's Callback API.

Both link a chat when a user sends it a one-time code (core/services/messengers.py). Telegram's
answer rides back in the webhook's response (the Bot API runs a method given there), so a
link costs no outbound call; VK expects a bare `ok`, so the community's reply is left to a
worker. Neither ever answers 500: a shape they do not expect is ignored (200) or refused with
a JSON error (4xx), as everywhere in the API (the providers read only the status of those).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from flask import Response, current_app, request
from flask_smorest import Blueprint

from core import i18n
from core.db import on_commit, session_scope
from core.notification_types import N_
from core.services import messengers
from core.services.errors import DomainError, Forbidden, Unauthorized
from core.settings import Settings
from web.limits import client_address, limiter, setting
from web.schemas import ErrorOut, TelegramReplyOut

log = logging.getLogger(__name__)

blp = Blueprint(
    "integrations",
    __name__,
    url_prefix="/api/integrations",
    description="Webhooks of the Telegram bot and the VK community",
)

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The worker task that sends the community's reply (tasks/); named, so web never imports it.
VK_REPLY_TASK = "messengers.vk_reply"
# Peer ids from here up are group conversations; only a person's own dialog is linked.
VK_CHAT_PEER_BASE = 2_000_000_000
# Telegram's chat ids have at most 52 significant bits; anything larger is not an id.
MAX_SAFE_INTEGER = 2**53 - 1
# VK's client_info.lang_id of the languages there are catalogues for.
VK_LANGUAGES = {0: "ru", 3: "en"}

LINKED = N_("Done: notifications will arrive here. Send /stop to turn them off.")
NOT_VALID = N_(
    "This link code is not valid or has expired. Get a new link in the notification settings."
)
TAKEN = N_("This chat is already linked to another account.")
STOPPED = N_("Notifications to this chat are turned off.")
HOW_TO_LINK = N_("Open the notification settings on the marketplace and press Link Telegram.")
ANSWERS = {
    "linked": LINKED,
    "relinked": LINKED,
    "invalid": NOT_VALID,
    "expired": NOT_VALID,
    "used": NOT_VALID,
    "taken": TAKEN,
}

WEBHOOK_LIMITED = "rate_limited: RATE_LIMIT_MESSENGER_WEBHOOKS per client address"
# What the OpenAPI document says of the bodies (the providers' own docs describe them whole).
TELEGRAM_UPDATE = {
    "type": "object",
    "description": "a Bot API Update; only `message.text` /start and /stop are acted on",
    "properties": {"update_id": {"type": "integer"}, "message": {"type": "object"}},
}
VK_EVENT = {
    "type": "object",
    "description": "a Callback API event; `confirmation` and `message_new` are acted on",
    "properties": {
        "type": {"type": "string"},
        "group_id": {"type": "integer"},
        "secret": {"type": "string"},
        "object": {"type": "object"},
    },
}


def _settings() -> Settings:
    """This process's settings."""
    return current_app.config["SETTINGS"]


def _same_secret(given: str, expected: str) -> bool:
    """Compare secrets in constant time (bytes: compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object, or 400 invalid_json."""
    try:
        body = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        # RecursionError: a body nested thousands of levels deep, which json gives up on.
        body = None
    if not isinstance(body, dict):
        raise DomainError("the request body must be a JSON object", code="invalid_json")
    return body


def _integer(value: Any) -> int | None:
    """A JSON integer that fits a double exactly (as every id here does), else None."""
    if isinstance(value, bool) or not isinstance(value, int):  # bool: Python counts it an int
        return None
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else None


def _text(value: Any) -> str | None:
    """A JSON string, else None."""
    return value if isinstance(value, str) else None


def _answer_locale(linked: str | None, given: str | None) -> str:
    """The linked user's locale, else the messenger's language if catalogued, else the default."""
    if linked:
        return i18n.supported(linked)
    primary = (given or "").split("-")[0].lower()
    return primary if primary in i18n.locales() else i18n.DEFAULT_LOCALE


# --- Telegram -----------------------------------------------------------------------------


def _check_telegram_secret(settings: Settings) -> None:
    """Refuse a request that does not carry the webhook's secret; before the body is read."""
    expected = settings.TELEGRAM_WEBHOOK_SECRET
    if not expected:
        raise Forbidden("the Telegram webhook is not configured", code="webhook_disabled")
    given = request.headers.get(TELEGRAM_SECRET_HEADER, "")
    if not given:
        raise Unauthorized(f"{TELEGRAM_SECRET_HEADER} is missing", code="invalid_secret")
    if not _same_secret(given, expected):
        raise Forbidden(f"{TELEGRAM_SECRET_HEADER} is wrong", code="invalid_secret")


def _command(text: str, bot: str) -> tuple[str, str] | None:
    """("start" or "stop", its argument) from a message's text; None for anything else."""
    parts = text.split(maxsplit=1)
    if not parts or not parts[0].startswith("/"):
        return None
    head, argument = parts[0], parts[1] if len(parts) > 1 else ""
    # In groups commands come as /start@bot; one addressed to another bot is not ours.
    name, _, addressee = head[1:].partition("@")
    if addressee and addressee.lower() != bot.lower():
        return None
    name = name.lower()
    return (name, argument.strip()) if name in ("start", "stop") else None


def _telegram_name(sender: dict[str, Any], chat: dict[str, Any]) -> str | None:
    """What to call the linked account: @username, else the person's or the chat's name."""
    username = _text(sender.get("username")) or _text(chat.get("username"))
    if username:
        return f"@{username}"
    names = [_text(sender.get("first_name")), _text(sender.get("last_name"))]
    return " ".join(n for n in names if n) or _text(chat.get("title"))


@blp.route("/telegram/webhook", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_MESSENGER_WEBHOOKS"), key_func=client_address)
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": TELEGRAM_SECRET_HEADER,
            "required": True,
            "schema": {"type": "string"},
            "description": "TELEGRAM_WEBHOOK_SECRET, as setWebhook registered it",
        }
    ],
    requestBody={"required": True, "content": {"application/json": {"schema": TELEGRAM_UPDATE}}},
)
@blp.response(200, TelegramReplyOut)
@blp.alt_response(400, schema=ErrorOut, description="invalid_json: not a JSON object")
@blp.alt_response(401, schema=ErrorOut, description="invalid_secret: the secret header is missing")
@blp.alt_response(
    403,
    schema=ErrorOut,
    description="invalid_secret: a wrong secret; webhook_disabled: no TELEGRAM_WEBHOOK_SECRET",
)
@blp.alt_response(429, schema=ErrorOut, description=WEBHOOK_LIMITED)
def telegram_webhook() -> dict[str, Any]:
    """One Bot API update: `/start <code>` links the chat, `/stop` unlinks it.

    Only calls carrying X-Telegram-Bot-Api-Secret-Token = TELEGRAM_WEBHOOK_SECRET are read.
    The bot's answer is the response itself (a sendMessage the Bot API performs); any other
    update is acknowledged with `{}` and ignored.
    """
    settings = _settings()
    _check_telegram_secret(settings)
    update = _json_object()
    message = update.get("message")
    if not isinstance(message, dict):
        return {}
    text = _text(message.get("text"))
    chat = message.get("chat")
    if not isinstance(chat, dict):
        return {}
    chat_id = _integer(chat.get("id"))
    command = _command(text, settings.TELEGRAM_BOT_USERNAME) if text else None
    if chat_id is None or command is None:
        return {}
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    name, code = command
    external_id = str(chat_id)
    with session_scope() as session:
        if name == "stop":
            locale = messengers.chat_locale(session, messengers.TELEGRAM, external_id)
            messengers.unlink_chat(session, messengers.TELEGRAM, external_id, "/stop in the chat")
            answer = STOPPED
        elif not code:
            locale = messengers.chat_locale(session, messengers.TELEGRAM, external_id)
            answer = HOW_TO_LINK
        else:
            result = messengers.complete_link(
                session, messengers.TELEGRAM, code, external_id, _telegram_name(sender, chat)
            )
            locale = messengers.chat_locale(session, messengers.TELEGRAM, external_id)
            answer = ANSWERS[result.kind]
    locale = _answer_locale(locale, _text(sender.get("language_code")))
    return {"method": "sendMessage", "chat_id": chat_id, "text": i18n.gettext(locale, answer)}


# --- VK -----------------------------------------------------------------------------------


def _plain(text: str) -> Response:
    """A text/plain answer, the only kind the Callback API reads."""
    return Response(text, mimetype="text/plain")


def _check_vk_secret(settings: Settings, event: dict[str, Any]) -> None:
    """Refuse an event that does not carry the Callback API's secret key."""
    expected = settings.VK_CALLBACK_SECRET
    if not expected:
        raise Forbidden("the VK Callback API is not configured", code="webhook_disabled")
    secret = _text(event.get("secret"))
    if not secret or not _same_secret(secret, expected):
        raise Forbidden("the event's secret is missing or wrong", code="invalid_secret")


def _vk_message(event: dict[str, Any]) -> dict[str, Any] | None:
    """The message of a message_new event (under `message` since API 5.103, else flat)."""
    obj = event.get("object")
    if not isinstance(obj, dict):
        return None
    message = obj.get("message", obj)
    return message if isinstance(message, dict) else None


def _vk_language(event: dict[str, Any]) -> str | None:
    """The language of the user's VK client, when it is one there are catalogues for."""
    obj = event.get("object")
    info = obj.get("client_info") if isinstance(obj, dict) else None
    lang_id = _integer(info.get("lang_id")) if isinstance(info, dict) else None
    return VK_LANGUAGES.get(lang_id) if lang_id is not None else None


def _vk_link(event: dict[str, Any]) -> None:
    """Link the dialog a message_new carrying a code came from; queue the community's reply."""
    message = _vk_message(event)
    if message is None:
        return
    text = _text(message.get("text"))
    peer_id = _integer(message.get("peer_id"))
    from_id = _integer(message.get("from_id"))
    code = messengers.normalize_code(messengers.VK, text) if text else None
    # A person's own dialog with the community; other messages are for the community's admins.
    if code is None or peer_id is None or peer_id != from_id or not 0 < peer_id < VK_CHAT_PEER_BASE:
        return
    external_id = str(peer_id)
    broker = current_app.extensions["broker"]
    with session_scope() as session:
        result = messengers.complete_link(session, messengers.VK, code, external_id, f"id{from_id}")
        linked = messengers.chat_locale(session, messengers.VK, external_id)
        text = i18n.gettext(_answer_locale(linked, _vk_language(event)), ANSWERS[result.kind])
        # After the commit, so the reply never announces a link that was rolled back; the
        # broker client logs and drops it when Redis is away: VK must still get its `ok`.
        on_commit(session, lambda: broker.send(VK_REPLY_TASK, [peer_id, text]))


@blp.route("/vk/callback", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_MESSENGER_WEBHOOKS"), key_func=client_address)
@blp.doc(
    requestBody={"required": True, "content": {"application/json": {"schema": VK_EVENT}}},
    responses={
        "200": {
            "description": "`ok`, or for `confirmation` the VK_CONFIRMATION_CODE",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
@blp.alt_response(400, schema=ErrorOut, description="invalid_json: not a JSON object")
@blp.alt_response(
    403,
    schema=ErrorOut,
    description="invalid_secret: `secret` missing or wrong; wrong_group: a confirmation for "
    "another group; webhook_disabled: VK_CALLBACK_SECRET or VK_CONFIRMATION_CODE not set",
)
@blp.alt_response(429, schema=ErrorOut, description=WEBHOOK_LIMITED)
def vk_callback() -> Response:
    """One Callback API event: `confirmation` is answered, `message_new` with a code links.

    Every event but the confirmation must carry `secret` = VK_CALLBACK_SECRET. Anything
    else is acknowledged with `ok` (VK re-sends an event until it reads `ok`).
    """
    settings = _settings()
    event = _json_object()
    kind = event.get("type")
    group_id = _integer(event.get("group_id"))
    if kind == "confirmation":
        if not settings.VK_CONFIRMATION_CODE:
            raise Forbidden("VK_CONFIRMATION_CODE is not set", code="webhook_disabled")
        if settings.VK_GROUP_ID is not None and group_id != settings.VK_GROUP_ID:
            raise Forbidden("this server confirms another group", code="wrong_group")
        return _plain(settings.VK_CONFIRMATION_CODE)
    _check_vk_secret(settings, event)
    if settings.VK_GROUP_ID is not None and group_id != settings.VK_GROUP_ID:
        # Our secret, another community: a setup mistake to see in the logs, not to retry.
        log.warning("VK event for group %s ignored; VK_GROUP_ID is %s", group_id,
                    settings.VK_GROUP_ID)  # fmt: skip
        return _plain("ok")
    if kind == "message_new":
        _vk_link(event)
    return _plain("ok")
