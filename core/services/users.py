"""Registration, login, token refresh and admin creation."""

from __future__ import annotations

from dataclasses import dataclass

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import User
from core.services import tokens
from core.services.errors import Conflict, Forbidden, NotFound, Unauthorized
from core.services.notifications import notify
from core.settings import Settings

SELF_SERVICE_ROLES = ("advertiser", "channel_owner")
# bcrypt 5 raises ValueError for passwords longer than this many bytes.
BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True)
class TokenPair:
    """An access token and a refresh token for one user."""

    access_token: str
    refresh_token: str


def hash_password(settings: Settings, password: str) -> str:
    """Hash a password with bcrypt at the configured cost."""
    salt = bcrypt.gensalt(rounds=settings.BCRYPT_ROUNDS)
    return bcrypt.hashpw(password.encode(), salt).decode()


def check_password(password: str, password_hash: str) -> bool:
    """Whether the password matches the stored hash."""
    secret = password.encode()
    # bcrypt refuses (ValueError) what it could never have hashed: such a password cannot match.
    if len(secret) > BCRYPT_MAX_BYTES:
        return False
    return bcrypt.checkpw(secret, password_hash.encode())


def issue_pair(settings: Settings, user_id: str) -> TokenPair:
    """Sign a fresh access and refresh token."""
    return TokenPair(
        access_token=tokens.issue(settings, user_id, "access"),
        refresh_token=tokens.issue(settings, user_id, "refresh"),
    )


def find_by_email(session: Session, email: str) -> User | None:
    """The user with this email, compared case-insensitively."""
    return session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def create_user(
    session: Session,
    settings: Settings,
    *,
    email: str,
    password: str,
    name: str,
    role: str,
    locale: str = "ru",
) -> User:
    """Create a user, refusing an email that is already taken."""
    if find_by_email(session, email) is not None:
        raise Conflict("email already registered", code="email_taken")
    user = User(
        email=email.lower(),
        name=name,
        role=role,
        locale=locale,
        password_hash=hash_password(settings, password),
    )
    session.add(user)
    session.flush()
    return user


def register(session: Session, settings: Settings, **fields: str) -> tuple[User, TokenPair]:
    """Register an advertiser or channel owner and queue their welcome email."""
    if fields.get("role") not in SELF_SERVICE_ROLES:
        raise Forbidden("admins are made from the command line, not by registration")
    user = create_user(session, settings, **fields)
    notify(session, user, "welcome", {"name": user.name})
    return user, issue_pair(settings, user.id)


def login(session: Session, settings: Settings, email: str, password: str) -> TokenPair:
    """Check credentials and sign tokens; the error does not say which part was wrong."""
    user = find_by_email(session, email)
    if user is None or not check_password(password, user.password_hash):
        raise Unauthorized("invalid email or password", code="invalid_credentials")
    return issue_pair(settings, user.id)


def refresh(session: Session, settings: Settings, refresh_token: str) -> str:
    """Trade a valid refresh token of an existing user for a new access token."""
    claims = tokens.verify(settings, refresh_token, "refresh")
    if session.get(User, claims.user_id) is None:
        raise Unauthorized("user no longer exists", code="token_invalid")
    return tokens.issue(settings, claims.user_id, "access")


def get_user(session: Session, user_id: str) -> User:
    """A user by id."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user
