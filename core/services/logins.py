"""Logins that can be ended: refresh-token rotation with reuse detection, logout, revocation.

Every sign-in starts a login (a family of refresh tokens). Each refresh retires the token it
was given and hands out the next; presenting a retired one means two parties hold the same
login (a stolen token), so the whole login is revoked. Access tokens carry their login's id:
once it is revoked they stop working on REST and its sockets are dropped (web/revocation.py).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.models import Login, User
from core.models.base import utcnow
from core.services import tokens
from core.services.errors import Unauthorized
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    """An access token and a refresh token of one login."""

    access_token: str
    refresh_token: str
    login_id: str


class RefreshTokenReused(Unauthorized):
    """A retired refresh token came back: the login it belongs to has been revoked."""

    def __init__(self, login_id: str) -> None:
        super().__init__(
            "this refresh token was already used; the login has been ended",
            code="token_reused",
        )
        self.login_id = login_id


def _pair(settings: Settings, login: Login) -> TokenPair:
    """Sign an access token and the login's current refresh token."""
    return TokenPair(
        access_token=tokens.issue(settings, login.user_id, "access", login_id=login.id),
        refresh_token=tokens.issue(
            settings, login.user_id, "refresh", login_id=login.id, jti=login.refresh_jti
        ),
        login_id=login.id,
    )


def start(
    session: Session,
    settings: Settings,
    user: User,
    address: str | None = None,
    user_agent: str | None = None,
) -> TokenPair:
    """Begin a login for a user who just proved who they are."""
    login = Login(
        user_id=user.id,
        refresh_jti=uuid.uuid4().hex,
        address=address,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(login)
    session.flush()
    return _pair(settings, login)


def rotate(session: Session, settings: Settings, refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair, retiring it; a retired one revokes its login.

    A reuse is committed before RefreshTokenReused is raised: the revocation must stand even
    though the call that caused it fails.
    """
    claims = tokens.verify(settings, refresh_token, "refresh")
    if claims.login_id is None:
        raise Unauthorized(
            "this refresh token predates logins; sign in again", code="token_invalid"
        )
    login = session.get(Login, claims.login_id, with_for_update=True)
    if login is None or login.user_id != claims.user_id:
        raise Unauthorized("unknown login", code="token_invalid")
    if login.revoked_at is not None:
        raise Unauthorized("this login has been ended", code="token_revoked")
    now = utcnow()
    if claims.jti != login.refresh_jti:
        # Two tabs may trade the same token moments apart: the one just retired is honoured
        # for REFRESH_REUSE_GRACE_SECONDS, so that race does not end the login.
        grace = login.rotated_at is not None and now - login.rotated_at < timedelta(
            seconds=settings.REFRESH_REUSE_GRACE_SECONDS
        )
        if claims.jti == login.previous_jti and grace:
            return _pair(settings, login)
        _revoke(login, "refresh_token_reused", now)
        session.commit()
        log.warning("refresh token reused: login %s of user %s revoked", login.id, login.user_id)
        raise RefreshTokenReused(login.id)
    login.previous_jti, login.refresh_jti = login.refresh_jti, uuid.uuid4().hex
    login.rotated_at = now
    return _pair(settings, login)


def _revoke(login: Login, reason: str, now: object) -> None:
    """Mark one login ended."""
    login.revoked_at = now  # type: ignore[assignment]
    login.revoked_reason = reason


def logout(session: Session, settings: Settings, refresh_token: str) -> str:
    """End the login a refresh token belongs to (again is fine); returns the login's id."""
    claims = tokens.verify(settings, refresh_token, "refresh")
    login = session.get(Login, claims.login_id, with_for_update=True) if claims.login_id else None
    if login is None or login.user_id != claims.user_id:
        raise Unauthorized("unknown login", code="token_invalid")
    if login.revoked_at is None:
        _revoke(login, "logout", utcnow())
    return login.id


def revoke_all(session: Session, user_id: str, reason: str, keep: str | None = None) -> list[str]:
    """End every live login of a user but `keep`; returns the ids it ended."""
    live = select(Login.id).where(Login.user_id == user_id, Login.revoked_at.is_(None))
    if keep is not None:
        live = live.where(Login.id != keep)
    ids = list(session.scalars(live))
    if ids:
        session.execute(
            update(Login)
            .where(Login.id.in_(ids))
            .values(revoked_at=utcnow(), revoked_reason=reason)
        )
    return ids


def is_revoked(session: Session, login_id: str) -> bool:
    """Whether a login has been ended (or never existed)."""
    login = session.get(Login, login_id)
    return login is None or login.revoked_at is not None
