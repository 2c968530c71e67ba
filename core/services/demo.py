"""Demo data for a first look: an admin, a channel owner with a channel, and an advertiser."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Channel, User
from core.services import channels, users
from core.services.errors import Conflict
from core.settings import Settings

DEMO_PASSWORD = "demo-password"
DEMO_CHANNEL = "Demo channel"
DEMO_PRICE_MINOR = 100_00
# (role, local part of the email, display name)
PEOPLE = (
    ("admin", "admin", "Ada Admin"),
    ("channel_owner", "owner", "Olga Owner"),
    ("advertiser", "advertiser", "Artem Advertiser"),
)


@dataclass(frozen=True)
class DemoLogin:
    """One demo account as the command prints it."""

    role: str
    email: str
    password: str
    name: str
    created: bool


@dataclass(frozen=True)
class DemoData:
    """What `create_demo` made or found."""

    logins: list[DemoLogin]
    channel_id: str
    channel_name: str


def _ensure_user(
    session: Session, settings: Settings, *, email: str, name: str, role: str, password: str
) -> tuple[User, bool]:
    """The demo user, created if missing; an existing one gets the printed password again."""
    user = users.find_by_email(session, email)
    if user is None:
        user = users.create_user(
            session, settings, email=email, password=password, name=name, role=role, locale="en"
        )
        return user, True
    if user.role != role:
        raise Conflict(f"{email} exists with the role {user.role}, not {role}", code="email_taken")
    # Running the command again must leave logins that work as printed.
    user.password_hash = users.hash_password(settings, password)
    return user, False


def create_demo(
    session: Session,
    settings: Settings,
    *,
    password: str = DEMO_PASSWORD,
    domain: str = "example.com",
) -> DemoData:
    """Create (or find again) the three demo accounts and the owner's channel; idempotent."""
    logins: list[DemoLogin] = []
    by_role: dict[str, User] = {}
    for role, local, name in PEOPLE:
        email = f"{local}@{domain}"
        user, created = _ensure_user(
            session, settings, email=email, name=name, role=role, password=password
        )
        by_role[role] = user
        logins.append(DemoLogin(role, email, password, name, created))
    owner = by_role["channel_owner"]
    channel = session.scalar(
        select(Channel).where(Channel.owner_id == owner.id, Channel.name == DEMO_CHANNEL)
    )
    if channel is None:
        channel = channels.create_channel(
            session,
            owner,
            name=DEMO_CHANNEL,
            platform="telegram",
            url="https://t.me/admarket_demo",
            price=DEMO_PRICE_MINOR,
        )
    return DemoData(logins, channel.id, channel.name)
