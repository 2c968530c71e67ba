"""Registration, login, password changes and admin creation."""

from __future__ import annotations

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import User
from core.services import logins
from core.services.errors import Conflict, Forbidden, NotFound, Unauthorized
from core.services.logins import TokenPair
from core.services.notifications import notify
from core.settings import Settings

SELF_SERVICE_ROLES = ("advertiser", "channel_owner")
# bcrypt 5 raises ValueError for passwords longer than this many bytes.
BCRYPT_MAX_BYTES = 72
# Where a sign-in came from: the client address and its User-Agent, kept on the login.
Client = tuple[str | None, str | None]


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


def register(
    session: Session, settings: Settings, client: Client | None = None, **fields: str
) -> tuple[User, TokenPair]:
    """Register an advertiser or channel owner, queue their welcome email and sign them in."""
    if fields.get("role") not in SELF_SERVICE_ROLES:
        raise Forbidden("admins are made from the command line, not by registration")
    user = create_user(session, settings, **fields)
    notify(session, user, "welcome", {"name": user.name})
    return user, logins.start(session, settings, user, *(client or (None, None)))


def login(
    session: Session, settings: Settings, email: str, password: str, client: Client | None = None
) -> TokenPair:
    """Check credentials and start a login; the error does not say which part was wrong."""
    user = find_by_email(session, email)
    if user is None or not check_password(password, user.password_hash):
        raise Unauthorized("invalid email or password", code="invalid_credentials")
    return logins.start(session, settings, user, *(client or (None, None)))


def change_password(
    session: Session,
    settings: Settings,
    user_id: str,
    current_login: str | None,
    current_password: str,
    new_password: str,
) -> list[str]:
    """Set a new password and end every other login of the user; returns the ended logins."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise Unauthorized("user no longer exists", code="token_invalid")
    if not check_password(current_password, user.password_hash):
        raise Forbidden("the current password is wrong", code="wrong_password")
    user.password_hash = hash_password(settings, new_password)
    return logins.revoke_all(session, user.id, "password_changed", keep=current_login)


def get_user(session: Session, user_id: str) -> User:
    """A user by id."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


def update_profile(
    session: Session,
    user_id: str,
    *,
    name: str | None = None,
    locale: str | None = None,
    email: str | None = None,
    password: str | None = None,
) -> User:
    """Change the name, the locale or (with the current password) the email address.

    A new address clears an undeliverable mark: it has not bounced yet.
    """
    user = session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise Unauthorized("user no longer exists", code="token_invalid")
    if name is not None:
        user.name = name
    if locale is not None:
        user.locale = locale
    if email is not None and email.lower() != user.email:
        if password is None or not check_password(password, user.password_hash):
            raise Forbidden("changing the email needs the current password", code="wrong_password")
        taken = find_by_email(session, email)
        if taken is not None and taken.id != user.id:
            raise Conflict("email already registered", code="email_taken")
        user.email = email.lower()
        user.email_undeliverable_at = None
        user.email_undeliverable_reason = None
    return user
