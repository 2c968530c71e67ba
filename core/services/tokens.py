"""JWT access and refresh tokens: pinned algorithm, required claims, distinct types."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import jwt

from core.services.errors import Unauthorized
from core.settings import Settings

TokenType = Literal["access", "refresh", "reset"]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "typ", "jti"]
# Verified access tokens kept by their text; a client sends one with every call until it expires.
VERIFIED_TOKENS = 4096


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    user_id: str
    type: TokenType
    expires_at: datetime
    # The login (core/models/logins.py) the token belongs to; None on tokens signed before
    # logins existed, which REST accepts until they expire and refresh refuses.
    login_id: str | None = None
    jti: str = ""
    # On a reset token: a fingerprint of the password hash it may replace (single use).
    fingerprint: str | None = None


def issue(
    settings: Settings,
    user_id: str,
    token_type: TokenType,
    login_id: str | None = None,
    jti: str | None = None,
    fingerprint: str | None = None,
) -> str:
    """Sign a token of the given type for the user, within one login."""
    now = datetime.now(UTC)
    ttl = {
        "access": settings.JWT_ACCESS_TTL_SECONDS,
        "refresh": settings.JWT_REFRESH_TTL_SECONDS,
        "reset": settings.PASSWORD_RESET_TTL_SECONDS,
    }[token_type]
    claims = {
        "sub": user_id,
        "typ": token_type,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": jti or uuid.uuid4().hex,
    }
    if login_id is not None:
        claims["sid"] = login_id
    if fingerprint is not None:
        claims["pwd"] = fingerprint
    return jwt.encode(claims, settings.JWT_SECRET_KEY, algorithm=settings.JWT_ALGORITHM)


def verify(settings: Settings, token: str | None, expected: TokenType) -> TokenClaims:
    """Check signature, expiry and type, or raise Unauthorized saying which check failed."""
    if not token:
        raise Unauthorized("missing token", code="token_missing")
    decode = _decoded_access if expected == "access" else _decoded
    try:
        claims = decode(token, settings.JWT_SECRET_KEY, settings.JWT_ALGORITHM)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired", code="token_expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}", code="token_invalid") from None
    # A remembered token is past PyJWT's own expiry check, so it is checked again on each use.
    if not isinstance(claims["exp"], int | float) or claims["exp"] <= time.time():
        raise Unauthorized("token expired", code="token_expired")
    if claims.get("typ") != expected:
        raise Unauthorized(f"expected an {expected} token", code="token_invalid")
    if not isinstance(claims.get("sub"), str):
        raise Unauthorized("invalid token subject", code="token_invalid")
    login_id = claims.get("sid")
    return TokenClaims(
        user_id=claims["sub"],
        type=expected,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        login_id=login_id if isinstance(login_id, str) else None,
        jti=str(claims["jti"]),
        fingerprint=claims.get("pwd") if isinstance(claims.get("pwd"), str) else None,
    )


def _decoded(token: str, key: str, algorithm: str) -> dict[str, Any]:
    """The token's claims once its signature, expiry and required claims are checked."""
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=[algorithm], options={"require": REQUIRED_CLAIMS}
    )
    return claims


# Verifying an access token (two JSON decodes and an HMAC) was ~5% of the web process's CPU
# per API call (docs/BENCHMARKS.md, issue 15). Only a token that verified is remembered, keyed
# by the secret and algorithm too; its expiry is checked again on each use (verify), and whether
# its login was ended is the caller's check (web/revocation.py). Callers must not change it.
_decoded_access = lru_cache(maxsize=VERIFIED_TOKENS)(_decoded)
