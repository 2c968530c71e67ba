"""One-click unsubscribe (RFC 8058): signed single-purpose links in emails, and their effect."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

import jwt
from sqlalchemy.orm import Session

from core import notification_types
from core.models import User
from core.services import preferences
from core.services.errors import DomainError
from core.settings import Settings

PURPOSE = "unsubscribe"
# The token names the user and the type; it never expires (a link in an old email must work).
REQUIRED_CLAIMS = ["sub", "typ", "nt"]
ALGORITHM = "HS256"


class InvalidUnsubscribeLink(DomainError):
    """A forged, truncated or other-purpose token: nothing is changed."""

    status = 400
    code = "invalid_unsubscribe_link"


@dataclass(frozen=True)
class Unsubscribe:
    """What a valid link asks for: one user's email of one optional type turned off."""

    user_id: str
    type: str


def _key(settings: Settings) -> bytes:
    """The signing key: its own setting, else derived from the JWT key (never the same bytes).

    Derived, so that no access or reset token can ever pass for an unsubscribe link.
    """
    if settings.UNSUBSCRIBE_SECRET_KEY:
        return settings.UNSUBSCRIBE_SECRET_KEY.encode()
    return hmac.new(settings.JWT_SECRET_KEY.encode(), PURPOSE.encode(), hashlib.sha256).digest()


def sign(settings: Settings, user_id: str, type_name: str) -> str:
    """The token for turning off `type_name` email for the user."""
    claims = {"sub": user_id, "typ": PURPOSE, "nt": type_name}
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def link(settings: Settings, token: str) -> str:
    """The HTTPS link the email's footer and List-Unsubscribe header carry."""
    return f"{settings.FRONTEND_URL.rstrip('/')}/unsubscribe/{quote(token, safe='')}"


def headers(settings: Settings, token: str) -> dict[str, str]:
    """List-Unsubscribe (the link, and a mailto: where configured) and List-Unsubscribe-Post."""
    targets = [f"<{link(settings, token)}>"]
    if settings.UNSUBSCRIBE_MAILTO:
        subject = quote(f"unsubscribe {token}", safe="")
        targets.append(f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject={subject}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def verify(settings: Settings, token: str) -> Unsubscribe:
    """What the token asks for, or InvalidUnsubscribeLink saying what is wrong with it."""
    try:
        claims = jwt.decode(
            token, _key(settings), algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS}
        )
    except jwt.InvalidTokenError:
        raise InvalidUnsubscribeLink("this unsubscribe link is not valid") from None
    kind = notification_types.TYPES.get(str(claims.get("nt")))
    if claims.get("typ") != PURPOSE or not isinstance(claims.get("sub"), str) or kind is None:
        raise InvalidUnsubscribeLink("this is not an unsubscribe link")
    if kind.required or not kind.has_email:
        raise InvalidUnsubscribeLink("this kind of email cannot be unsubscribed from")
    return Unsubscribe(user_id=claims["sub"], type=kind.name)


def describe(session: Session, settings: Settings, token: str) -> tuple[Unsubscribe, User]:
    """Check a link and find its user, changing nothing (the confirmation page)."""
    request = verify(settings, token)
    user = session.get(User, request.user_id)
    if user is None:
        raise InvalidUnsubscribeLink("this unsubscribe link's account no longer exists")
    return request, user


def apply(session: Session, settings: Settings, token: str) -> tuple[Unsubscribe, bool]:
    """Turn the link's type of email off; idempotent. Returns the request and whether it changed."""
    request, _ = describe(session, settings, token)
    return request, preferences.opt_out(session, request.user_id, request.type)
