"""Which channels each user wants for each notification type, over the registry's defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from core import notification_types
from core.models import User
from core.notification_types import CHOOSABLE_CHANNELS, NotificationType
from core.services.errors import NotFound, Unprocessable

if TYPE_CHECKING:
    from core.services.notification_writes import Recipient


def enabled(user: Recipient, kind: NotificationType, channel: str) -> bool:
    """Whether `user` gets `kind` on `channel`: offered, and required or not turned off."""
    if channel not in kind.channels:
        return False
    if channel == "inbox" or kind.required:
        return True
    return bool((user.notification_prefs or {}).get(kind.name, {}).get(channel, True))


def channels_for(user: Recipient, kind: NotificationType) -> tuple[str, ...]:
    """The channels a new notification of `kind` goes out on for `user`."""
    return tuple(c for c in kind.channels if enabled(user, kind, c))


def describe(user: User) -> list[dict[str, Any]]:
    """The user's grid: every type they may receive, with each choosable channel on or off."""
    return [
        {
            "type": kind.name,
            "label": kind.label,
            "required": kind.required,
            "available": list(kind.choosable),
            "channels": {c: enabled(user, kind, c) for c in CHOOSABLE_CHANNELS},
        }
        for kind in notification_types.for_role(user.role)
    ]


def _validate(user: User, changes: Any) -> list[tuple[NotificationType, str, bool]]:
    """Check every change before applying any; a 422 names each problem found."""
    problems: list[dict[str, str]] = []
    valid: list[tuple[NotificationType, str, bool]] = []
    for item in changes:
        name = item["type"]
        kind = notification_types.TYPES.get(name)
        if kind is None or not kind.is_for(user.role):
            problems.append({"type": name, "problem": "unknown notification type"})
            continue
        for channel, on in item["channels"].items():
            if channel not in CHOOSABLE_CHANNELS:
                problems.append({"type": name, "channel": channel, "problem": "unknown channel"})
            elif on and channel not in kind.channels:
                problems.append(
                    {"type": name, "channel": channel, "problem": "not offered for this type"}
                )
            elif not on and kind.required and channel in kind.channels:
                problems.append(
                    {"type": name, "channel": channel, "problem": "required: cannot be turned off"}
                )
            else:
                valid.append((kind, channel, bool(on)))
    if problems:
        named = ", ".join(
            f"{p['type']}{'.' + p['channel'] if 'channel' in p else ''} ({p['problem']})"
            for p in problems
        )
        raise Unprocessable(
            f"cannot apply these preferences: {named}",
            code="invalid_preferences",
            details={"problems": problems},
        )
    return valid


def _store(user: User, changes: list[tuple[NotificationType, str, bool]]) -> None:
    """Write the changes as overrides: only what differs from the defaults is kept."""
    prefs = {k: dict(v) for k, v in (user.notification_prefs or {}).items()}
    for kind, channel, on in changes:
        by_channel = prefs.setdefault(kind.name, {})
        if on:
            by_channel.pop(channel, None)  # on is every offered channel's default
        elif channel in kind.channels:
            by_channel[channel] = False
        if not by_channel:
            del prefs[kind.name]
    # A new dict, so the ORM sees the JSON column change.
    user.notification_prefs = prefs


def _locked_user(session: Session, user_id: str) -> User:
    """The user row under a write lock, so concurrent changes are applied one after another."""
    user = session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise NotFound("user not found")
    return user


def update(session: Session, user_id: str, changes: list[dict[str, Any]]) -> User:
    """Apply `[{type, channels: {channel: bool}}]`, changing only what it names; all or nothing."""
    user = _locked_user(session, user_id)
    _store(user, _validate(user, changes))
    return user


def opt_out(session: Session, user_id: str, type_name: str | None = None) -> bool:
    """Turn email off for one optional type, or for every one (None); True if anything changed.

    Required types keep their email: an opt-out never silences money or security.
    """
    user = _locked_user(session, user_id)
    kinds = notification_types.for_role(user.role)
    if type_name is not None:
        kinds = [k for k in kinds if k.name == type_name]
    changes = [(k, "email", False) for k in kinds if k.has_email and not k.required]
    before = user.notification_prefs
    _store(user, changes)
    return user.notification_prefs != before
