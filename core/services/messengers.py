"""Telegram chats and VK dialogs linked to users with one-time codes, and unlinked again.

A user asks for a code on the settings page and sends it to the bot (Telegram's /start
payload) or to the community (typed into VK); the chat it arrives from becomes where that
messenger's notifications go. Only the code's sha256 is stored, codes work once and for
LINK_CODE_TTL_SECONDS, and a chat linked to one user is never taken over by another's code.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import LinkCode, MessengerLink, User
from core.models.base import utcnow
from core.models.messengers import MESSENGERS
from core.services.errors import NotFound
from core.settings import Settings

log = logging.getLogger(__name__)

TELEGRAM = "telegram"
VK = "vk"
# What Telegram allows in a /start payload: up to 64 of A-Z a-z 0-9 _ -.
TELEGRAM_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A VK code is typed by hand from the settings page: no 0/O, 1/I/L, U/V to misread.
VK_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
VK_CODE_LENGTH = 8
VK_CODE = re.compile(f"[{VK_ALPHABET}]{{{VK_CODE_LENGTH}}}")
# Separators a person may type inside a code ("ABCD EFGH", "abcd-efgh").
_TYPED_SEPARATORS = re.compile(r"[\s-]+")
DISPLAY_NAME_MAX = 200

LinkKind = Literal["linked", "relinked", "invalid", "expired", "used", "taken"]


@dataclass(frozen=True)
class LinkResult:
    """What a code sent from a chat did; `user_id` is who the chat belongs to afterwards."""

    kind: LinkKind
    user_id: str | None = None

    @property
    def linked(self) -> bool:
        """Whether the chat is now the user's (newly, or it already was)."""
        return self.kind in ("linked", "relinked")


def _check_channel(channel: str) -> None:
    """Refuse a channel that is not a messenger: a caller's bug, not a user's input."""
    if channel not in MESSENGERS:
        raise ValueError(f"unknown messenger {channel!r}; known: {', '.join(MESSENGERS)}")


def hash_code(code: str) -> str:
    """The sha256 hex of a code, which is all the database keeps of it."""
    return hashlib.sha256(code.encode()).hexdigest()


def normalize_code(channel: str, text: str) -> str | None:
    """The code as it was issued, from what the user sent; None when it cannot be a code."""
    _check_channel(channel)
    if channel == TELEGRAM:
        code = text.strip()
        return code if TELEGRAM_CODE.fullmatch(code) else None
    code = _TYPED_SEPARATORS.sub("", text).upper()
    return code if VK_CODE.fullmatch(code) else None


def _storable(display_name: str | None) -> str | None:
    """A provider's name for the account as a column can hold it, or None when empty."""
    # PostgreSQL text holds no NUL and UTF-8 no lone surrogate; JSON carries both.
    text = (display_name or "").replace("\x00", "").encode("utf-8", "replace").decode()
    return text.strip()[:DISPLAY_NAME_MAX] or None


def _new_code(channel: str) -> str:
    """A fresh random code in the channel's format."""
    if channel == TELEGRAM:
        # 128 bits: nobody guesses a live one; 22 characters of the payload's alphabet.
        return secrets.token_urlsafe(16)
    # ~39 bits, enough for a code that lives minutes and is tried only by messaging the
    # community (rate-limited by VK and by RATE_LIMIT_MESSENGER_WEBHOOKS).
    return "".join(secrets.choice(VK_ALPHABET) for _ in range(VK_CODE_LENGTH))


def start_link(
    session: Session, settings: Settings, user_id: str, channel: str
) -> tuple[str, datetime]:
    """Issue a one-time code for linking the user's account on `channel`, and its expiry.

    Every earlier code of the user for that channel stops working: only the newest link
    on the settings page is live.
    """
    _check_channel(channel)
    # Locked so two clicks at once cannot leave two live codes.
    if session.get(User, user_id, with_for_update=True) is None:
        raise NotFound("user not found")
    session.execute(
        delete(LinkCode).where(LinkCode.user_id == user_id, LinkCode.channel == channel)
    )
    code = _new_code(channel)
    now = utcnow()
    expires_at = now + timedelta(seconds=settings.LINK_CODE_TTL_SECONDS)
    session.add(
        LinkCode(
            code_hash=hash_code(code),
            user_id=user_id,
            channel=channel,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return code, expires_at


def _chat_link(session: Session, channel: str, external_id: str) -> MessengerLink | None:
    """The link of one chat, locked until the transaction ends."""
    return session.scalars(
        select(MessengerLink)
        .where(MessengerLink.channel == channel, MessengerLink.external_id == external_id)
        .with_for_update()
    ).one_or_none()


def _user_link(session: Session, user_id: str, channel: str) -> MessengerLink | None:
    """A user's link on one messenger, locked until the transaction ends."""
    return session.scalars(
        select(MessengerLink)
        .where(MessengerLink.user_id == user_id, MessengerLink.channel == channel)
        .with_for_update()
    ).one_or_none()


def _mark(session: Session, user_id: str, channel: str, linked: bool) -> None:
    """Keep the user row's list of linked messengers, which notify() reads without a query."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        return
    names = set(user.linked_messengers or [])
    names = names | {channel} if linked else names - {channel}
    if names != set(user.linked_messengers or []):
        user.linked_messengers = sorted(names)


def complete_link(
    session: Session, channel: str, code: str, external_id: str, display_name: str | None
) -> LinkResult:
    """Link the chat `external_id` to the user whose code it sent, if the code allows it.

    A user who links another chat moves their link there; a chat linked to someone else is
    refused (`taken`) and nothing changes. A code works once: it is marked used in this
    transaction, with its row locked, so two chats sending it at once cannot both win.
    """
    normalized = normalize_code(channel, code)
    if normalized is None:
        return LinkResult("invalid")
    row = session.scalars(
        select(LinkCode)
        .where(LinkCode.code_hash == hash_code(normalized), LinkCode.channel == channel)
        .with_for_update()
    ).one_or_none()
    if row is None:
        return LinkResult("invalid")
    name = _storable(display_name)
    chat = _chat_link(session, channel, external_id)
    now = utcnow()
    if row.used_at is not None:
        if chat is not None and chat.user_id == row.user_id:
            # The same message again (VK re-posts events it saw no answer to): already done.
            return LinkResult("relinked", row.user_id)
        return LinkResult("used")
    if row.expires_at <= now:
        return LinkResult("expired")
    if chat is not None and chat.user_id != row.user_id:
        return LinkResult("taken", chat.user_id)
    if chat is not None:
        row.used_at = now
        chat.display_name = name or chat.display_name
        _mark(session, row.user_id, channel, True)
        session.flush()
        return LinkResult("relinked", row.user_id)
    mine = _user_link(session, row.user_id, channel)
    try:
        # A savepoint: another user's code may link this very chat in a concurrent
        # transaction, which the unique (channel, external_id) constraint then refuses.
        with session.begin_nested():
            if mine is not None:
                mine.external_id, mine.display_name, mine.created_at = external_id, name, now
            else:
                session.add(
                    MessengerLink(
                        user_id=row.user_id,
                        channel=channel,
                        external_id=external_id,
                        display_name=name,
                        created_at=now,
                    )
                )
    except IntegrityError:
        holder = _chat_link(session, channel, external_id)
        return LinkResult("taken", holder.user_id if holder else None)
    row.used_at = now
    _mark(session, row.user_id, channel, True)
    session.flush()
    log.info(
        "%s linked for user %s%s",
        channel,
        row.user_id,
        " (moved from another chat)" if mine else "",
    )
    return LinkResult("linked", row.user_id)


def unlink(session: Session, user_id: str, channel: str, reason: str) -> bool:
    """Forget the user's chat on `channel`; False when there was none."""
    _check_channel(channel)
    link = _user_link(session, user_id, channel)
    if link is None:
        return False
    session.delete(link)
    _mark(session, user_id, channel, False)
    session.flush()
    # Not the audit trail: that records admins' actions (SPEC.md), and this is the user's own.
    log.info("%s unlinked for user %s: %s", channel, user_id, reason)
    return True


def unlink_chat(session: Session, channel: str, external_id: str, reason: str) -> bool:
    """Forget whoever's link goes to this chat (/stop, a blocked bot); False when none did."""
    _check_channel(channel)
    link = _chat_link(session, channel, external_id)
    if link is None:
        return False
    user_id = link.user_id
    session.delete(link)
    _mark(session, user_id, channel, False)
    session.flush()
    log.info("%s unlinked for user %s: %s", channel, user_id, reason)
    return True


def links_of(session: Session, user_id: str) -> dict[str, MessengerLink]:
    """The user's linked chats by messenger; a messenger without one is absent."""
    rows = session.scalars(select(MessengerLink).where(MessengerLink.user_id == user_id))
    return {link.channel: link for link in rows}


def chat_locale(session: Session, channel: str, external_id: str) -> str | None:
    """The locale of the user this chat is linked to, to answer in; None when it is nobody's."""
    return session.scalar(
        select(User.locale)
        .join(MessengerLink, MessengerLink.user_id == User.id)
        .where(MessengerLink.channel == channel, MessengerLink.external_id == external_id)
    )
