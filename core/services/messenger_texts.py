"""Notification texts for the messengers: Telegram's HTML and VK's plain text, in the user's locale.

The title and message were written from the catalogues in the recipient's locale when the
notification was stored; they carry user-written parts (campaign titles, an admin's broadcast),
so Telegram's HTML escapes all of them and adds only its own tags.
"""

from __future__ import annotations

from html import escape

from core import i18n
from core.models import Notification
from core.notification_types import N_

OPEN_LABEL = N_("Open in the marketplace")
# Telegram refuses texts longer than this (in characters, after entities are parsed).
TELEGRAM_MAX_CHARS = 4096
VK_MAX_CHARS = 4096


def link(frontend_url: str, notification: Notification) -> str:
    """Where the button leads: the inbox page, opened at this notification."""
    return f"{frontend_url.rstrip('/')}/?notification={notification.id}"


def open_label(locale: str) -> str:
    """The button's label in the locale."""
    return i18n.gettext(locale, OPEN_LABEL)


def _clip(text: str, limit: int) -> str:
    """Cut an over-long message (a long broadcast) rather than have the provider refuse it."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def telegram(notification: Notification) -> str:
    """Bold title, then the message; everything escaped for HTML parse mode."""
    title = escape(_clip(notification.title, 256), quote=False)
    room = TELEGRAM_MAX_CHARS - len(notification.title) - 16
    return f"<b>{title}</b>\n{escape(_clip(notification.message, room), quote=False)}"


def vk(notification: Notification, frontend_url: str, locale: str) -> str:
    """Title, message and the link, as plain text (VK's messages have no markup)."""
    url = link(frontend_url, notification)
    room = VK_MAX_CHARS - len(notification.title) - len(url) - 64
    body = _clip(notification.message, room)
    return f"{notification.title}\n{body}\n\n{open_label(locale)}: {url}"
