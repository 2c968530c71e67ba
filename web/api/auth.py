"""Registration, login and token refresh."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint

from core.db import session_scope
from core.models import User
from core.services import logins, password_reset, users
from web.auth import auth_required
from web.limits import (
    client_address,
    limiter,
    login_account_key,
    login_failed,
    request_origin,
    setting,
)
from web.revocation import announce
from web.schemas import (
    AccessOut,
    ErrorOut,
    LoginIn,
    PasswordIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    RegisterOut,
    TokensOut,
)

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Sign up and sign in")
RATE_LIMITED = "rate_limited: too many attempts; the Retry-After header says when to try again"


@blp.route("/password-reset", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_PASSWORD_RESET"), key_func=client_address, scope="reset")
@blp.arguments(PasswordResetIn())
@blp.response(202)
@blp.alt_response(429, schema=ErrorOut, description=RATE_LIMITED)
def request_password_reset(body: dict[str, Any]) -> dict[str, str]:
    """Email a one-time link to set a new password, if the address is an account's.

    Always 202, in the same time whatever the address: a worker looks it up, so the answer
    tells nobody whether an account exists.
    """
    current_app.extensions["broker"].send("auth.request_password_reset", [body["email"]])
    return {"status": "accepted"}


@blp.route("/password-reset/confirm", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_PASSWORD_RESET"), key_func=client_address, scope="reset")
@blp.arguments(PasswordResetConfirmIn())
@blp.response(204)
def confirm_password_reset(body: dict[str, Any]) -> None:
    """Set a new password with an emailed link; every login of the user ends."""
    with session_scope() as session:
        ended = password_reset.confirm(
            session, current_app.config["SETTINGS"], body["token"], body["new_password"]
        )
    announce(ended, "password_reset")


def _signed_in_account_key() -> str:
    """The login limit's key for the signed-in user's account, as a login with its email."""
    with session_scope() as session:
        user = session.get(User, g.user_id)
        return f"account:{user.email.lower()}" if user else f"account-user:{g.user_id}"


@blp.route("/register", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_REGISTER"), key_func=client_address, scope="register")
@blp.arguments(RegisterIn())
@blp.response(201, RegisterOut)
@blp.alt_response(429, schema=ErrorOut, description=RATE_LIMITED)
def register(body: dict[str, Any]) -> dict[str, Any]:
    """Register an advertiser or a channel owner; their welcome email is queued."""
    with session_scope() as session:
        user, pair = users.register(
            session, current_app.config["SETTINGS"], request_origin(), **body
        )
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
@blp.arguments(LoginIn())
@blp.response(200, TokensOut)
@blp.alt_response(429, schema=ErrorOut, description=RATE_LIMITED)
def login(body: dict[str, Any]) -> dict[str, Any]:
    """Trade email and password for an access and a refresh token."""
    with session_scope() as session:
        pair = users.login(
            session,
            current_app.config["SETTINGS"],
            body["email"],
            body["password"],
            request_origin(),
        )
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
    }


@blp.route("/refresh", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_REFRESH"), key_func=client_address, scope="refresh")
@blp.arguments(RefreshIn())
@blp.response(200, AccessOut)
@blp.alt_response(429, schema=ErrorOut, description=RATE_LIMITED)
def refresh(body: dict[str, Any]) -> dict[str, Any]:
    """Trade a refresh token for a new access token and the next refresh token.

    The refresh token sent is retired: presenting it again ends the whole login (a stolen
    token), on REST and on every socket of that login.
    """
    try:
        with session_scope() as session:
            pair = logins.rotate(session, current_app.config["SETTINGS"], body["refresh_token"])
    except logins.RefreshTokenReused as exc:
        announce([exc.login_id], "refresh_token_reused")
        raise
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
    }


@blp.route("/logout", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_REFRESH"), key_func=client_address, scope="logout")
@blp.arguments(RefreshIn())
@blp.response(204)
def logout(body: dict[str, Any]) -> None:
    """End the login of this refresh token: its tokens stop working, its sockets are dropped."""
    with session_scope() as session:
        login_id = logins.logout(session, current_app.config["SETTINGS"], body["refresh_token"])
    announce([login_id], "logout")


@blp.route("/password", methods=["POST"])
@auth_required
@limiter.limit(
    setting("RATE_LIMIT_LOGIN_ACCOUNT"),
    key_func=_signed_in_account_key,
    deduct_when=login_failed,
    scope="login-account",
)
@blp.arguments(PasswordIn())
@blp.response(204)
@blp.doc(security=[{"bearer": []}])
def change_password(body: dict[str, Any]) -> None:
    """Change the password; every other login of the user ends and its sockets are dropped.

    A wrong current password is a 403 and counts against the login limit.
    """
    with session_scope() as session:
        ended = users.change_password(
            session,
            current_app.config["SETTINGS"],
            g.user_id,
            g.login_id,
            body["current_password"],
            body["new_password"],
        )
    announce(ended, "password_changed")
