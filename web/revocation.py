"""Ended logins take effect at once: their access tokens are refused, their sockets dropped.

A revoked login's id is kept in Redis for as long as its access tokens can live, so checking
a token costs one EXISTS; with Redis away the check asks the database instead. Its sockets, on
whichever web process, hear `session_revoked` and are disconnected (web/socketio_manager.py
does that on the message-queue listener of each process).
"""

from __future__ import annotations

import logging

import redis
from flask import current_app

from core.db import session_scope
from core.rooms import SESSION_REVOKED_EVENT, login_room
from core.services import logins, tokens
from core.services.errors import Unauthorized
from web.extensions import socketio

log = logging.getLogger(__name__)
REVOKED_PREFIX = "revoked:login:"


def _client() -> redis.Redis:
    """This process's Redis client (the presence pool)."""
    return current_app.extensions["presence"].client


def announce(login_ids: list[str], reason: str) -> None:
    """Make ended logins' tokens useless now and drop their sockets on every web process."""
    if not login_ids:
        return
    ttl = current_app.config["SETTINGS"].JWT_ACCESS_TTL_SECONDS
    try:
        pipe = _client().pipeline(transaction=False)
        for login_id in login_ids:
            pipe.set(REVOKED_PREFIX + login_id, reason, ex=ttl)
        pipe.execute()
    except redis.RedisError as exc:
        # The database has the revocation; checks fall back to it while Redis is away.
        log.warning("revocation of %d logins not cached in Redis: %s", len(login_ids), exc)
    for login_id in login_ids:
        try:
            socketio.emit(SESSION_REVOKED_EVENT, {"reason": reason}, to=login_room(login_id))
        except Exception as exc:
            log.warning("could not tell login %s's sockets to go: %s", login_id, exc)


def ensure_live(claims: tokens.TokenClaims) -> None:
    """Refuse an access token whose login has been ended."""
    if claims.login_id is None:
        return
    try:
        revoked = bool(_client().exists(REVOKED_PREFIX + claims.login_id))
    except redis.RedisError:
        with session_scope() as session:
            revoked = logins.is_revoked(session, claims.login_id)
    if revoked:
        raise Unauthorized("this login has been ended; sign in again", code="token_revoked")
