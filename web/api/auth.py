"""Registration, login and token refresh."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from core.db import session_scope
from core.services import users
from web.limits import client_address, limiter, login_account_key, login_failed, setting
from web.schemas import (
    AccessOut,
    ErrorOut,
    LoginIn,
    RefreshIn,
    RegisterIn,
    RegisterOut,
    TokensOut,
)

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Sign up and sign in")
RATE_LIMITED = "rate_limited: too many attempts; the Retry-After header says when to try again"


@blp.route("/register", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_REGISTER"), key_func=client_address, scope="register")
@blp.arguments(RegisterIn)
@blp.response(201, RegisterOut)
@blp.alt_response(429, schema=ErrorOut, description=RATE_LIMITED)
def register(body: dict[str, Any]) -> dict[str, Any]:
    """Register an advertiser or a channel owner; their welcome email is queued."""
    with session_scope() as session:
        user, pair = users.register(session, current_app.config["SETTINGS"], **body)
    return {
        "user": user,
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
    }


@blp.route("/login", methods=["POST"])
@limiter.limit(
    setting("RATE_LIMIT_LOGIN_ACCOUNT"),
    key_func=login_account_key,
    deduct_when=login_failed,
    scope="login-account",
)
@limiter.limit(setting("RATE_LIMIT_LOGIN_ADDRESS"), key_func=client_address, scope="login-address")
@blp.arguments(LoginIn)
@blp.response(200, TokensOut)
@blp.alt_response(429, schema=ErrorOut, description=RATE_LIMITED)
def login(body: dict[str, Any]) -> dict[str, Any]:
    """Trade email and password for an access and a refresh token."""
    with session_scope() as session:
        pair = users.login(session, current_app.config["SETTINGS"], body["email"], body["password"])
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
    }


@blp.route("/refresh", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_REFRESH"), key_func=client_address, scope="refresh")
@blp.arguments(RefreshIn)
@blp.response(200, AccessOut)
@blp.alt_response(429, schema=ErrorOut, description=RATE_LIMITED)
def refresh(body: dict[str, Any]) -> dict[str, Any]:
    """Trade a refresh token for a new access token."""
    with session_scope() as session:
        token = users.refresh(session, current_app.config["SETTINGS"], body["refresh_token"])
    return {"access_token": token, "token_type": "bearer"}
