"""Hand-made JWTs for testing how the server treats bad and expiring tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt

from tests.support.environment import TEST_JWT_SECRET


def make_token(
    user_id: str,
    *,
    expires_in: float = 900,
    token_type: str = "access",
    secret: str = TEST_JWT_SECRET,
    algorithm: str = "HS256",
) -> str:
    """A token like the server's, with the expiry, type, key or algorithm a test asks for."""
    now = datetime.now(UTC)
    claims = {
        "sub": user_id,
        "typ": token_type,
        "iat": now,
        "exp": now + timedelta(seconds=expires_in),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=algorithm)
