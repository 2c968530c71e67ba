"""Password reset by email: a one-time link, valid 30 minutes, that ends every login.

The link carries a signed token of its own type (useless as an access or refresh token) with a
fingerprint of the password hash it may replace: once the password changes, by this link or
otherwise, every link sent before is dead. Nothing secret is stored: the worker signs the token
while it renders the email, so the inbox, the database and the logs never hold one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from sqlalchemy.orm import Session

from core.models import User
from core.services import logins, tokens, users
from core.services.errors import DomainError, Unauthorized
from core.services.notifications import notify
from core.settings import Settings

log = logging.getLogger(__name__)


class InvalidResetToken(DomainError):
    """The link is forged, expired, already used, or not a reset link at all."""

    status = 400
    code = "reset_token_invalid"


def fingerprint(password_hash: str) -> str:
    """A short digest of the current password hash, which any password change alters."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def sign(settings: Settings, user: User) -> str:
    """The token of a reset link for the user's current password."""
    return tokens.issue(settings, user.id, "reset", fingerprint=fingerprint(user.password_hash))


def request(session: Session, email: str) -> bool:
    """Queue a reset email if the address is an account's; says whether it was (for logs only)."""
    user = users.find_by_email(session, email.strip())
    if user is None:
        log.info("password reset asked for an address with no account")
        return False
    notify(session, user, "password_reset", {})
    return True


def confirm(session: Session, settings: Settings, token: str, new_password: str) -> list[str]:
    """Set the new password and end every login of the user; returns the logins ended."""
    try:
        claims = tokens.verify(settings, token, "reset")
    except Unauthorized:
        raise InvalidResetToken("this reset link is not valid or has expired") from None
    user = session.get(User, claims.user_id, with_for_update=True)
    expected = fingerprint(user.password_hash) if user is not None else ""
    if user is None or not hmac.compare_digest(claims.fingerprint or "", expected):
        raise InvalidResetToken("this reset link has already been used")
    user.password_hash = users.hash_password(settings, new_password)
    return logins.revoke_all(session, user.id, "password_reset")
