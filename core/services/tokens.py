"""JWT access and refresh tokens: pinned algorithm, required claims, distinct types."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from core.services.errors import Unauthorized
from core.settings import Settings

TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "typ", "jti"]


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    user_id: str
    type: TokenType
    expires_at: datetime


def issue(settings: Settings, user_id: str, token_type: TokenType) -> str:
    """Sign a token of the given type for the user."""
    now = datetime.now(UTC)
    ttl = (
        settings.JWT_ACCESS_TTL_SECONDS
        if token_type == "access"
        else settings.JWT_REFRESH_TTL_SECONDS
    )
    claims = {
        "sub": user_id,
        "typ": token_type,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.JWT_SECRET_KEY, algorithm=settings.JWT_ALGORITHM)


def verify(settings: Settings, token: str | None, expected: TokenType) -> TokenClaims:
    """Check signature, expiry and type, or raise Unauthorized saying which check failed."""
    if not token:
        raise Unauthorized("missing token", code="token_missing")
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SECRET_KEY,
            algorithms=[settings.JWT_ALGORITHM],
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired", code="token_expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}", code="token_invalid") from None
    if claims.get("typ") != expected:
        raise Unauthorized(f"expected an {expected} token", code="token_invalid")
    if not isinstance(claims.get("sub"), str):
        raise Unauthorized("invalid token subject", code="token_invalid")
    return TokenClaims(
        user_id=claims["sub"],
        type=expected,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )
