"""Bearer-token authentication for REST views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from sqlalchemy.orm import Session

from core.models import User
from core.services import tokens
from core.services.errors import Forbidden, Unauthorized
from web.revocation import ensure_live

F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def auth_required(view: F) -> F:
    """Refuse the request with 401 unless it carries a valid access token."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        claims = tokens.verify(current_app.config["SETTINGS"], bearer_token(), "access")
        ensure_live(claims)
        g.user_id = claims.user_id
        g.login_id = claims.login_id
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def actor(session: Session, *roles: str) -> User:
    """The signed-in user, refused with 403 unless they hold one of `roles` (if given)."""
    user = session.get(User, g.user_id)
    if user is None:
        raise Unauthorized("user no longer exists", code="token_invalid")
    if roles and user.role not in roles:
        raise Forbidden(f"this requires the role {' or '.join(roles)}")
    return user
