"""The Socket.IO contract: JWT at the handshake, private rooms, ping/pong, catch-up, expiry."""

from __future__ import annotations

import heapq
import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import current_app, request
from flask_socketio import ConnectionRefusedError as Refused
from flask_socketio import SocketIO, emit, join_room

from core import metrics
from core.db import session_scope
from core.models import User
from core.rooms import login_room, user_room
from core.services import notifications, tokens
from core.services.errors import Unauthorized
from web.auth import bearer_token
from web.limits import client_address
from web.presence import HEARTBEAT_SECONDS, Presence
from web.revocation import ensure_live
from web.schemas import MAX_SEQ
from web.socket_guard import SocketGuard
from web.socketio_manager import CatchUpRedisManager, notifications_in

log = logging.getLogger(__name__)


class Expiry:
    """Disconnects each socket when its access token expires, from one background loop."""

    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio
        self.heap: list[tuple[float, str]] = []
        self.started = False

    def watch(self, sid: str, expires_at: datetime) -> None:
        """Schedule a socket's disconnection at its token's expiry."""
        heapq.heappush(self.heap, (expires_at.timestamp(), sid))
        if not self.started:
            self.started = True
            self.socketio.start_background_task(self._loop)

    def _loop(self) -> None:
        """Every half second, disconnect the sockets whose time has come."""
        while True:
            now = time.time()
            while self.heap and self.heap[0][0] <= now:
                _, sid = heapq.heappop(self.heap)
                try:
                    self.socketio.server.disconnect(sid, namespace="/")
                except Exception:
                    log.exception("could not disconnect expired socket %s", sid)
            self.socketio.sleep(0.5)


def _token_from_handshake(auth: Any) -> str | None:
    """The access token from `auth.token`, the `?token=` query, or an Authorization header."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    return request.args.get("token") or bearer_token()


def _last_seq(auth: Any) -> int | None:
    """The client's `auth.last_seq`, if it sent a usable one."""
    value = auth.get("last_seq") if isinstance(auth, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        seq = int(value)
    except ValueError:
        return None
    # Beyond the seq column's range it can only be garbage, and would overflow the query.
    return seq if 0 <= seq <= MAX_SEQ else None


def _send_backlog(
    socketio: SocketIO, manager: CatchUpRedisManager, sid: str, user_id: str, last_seq: int | None
) -> None:
    """Send stored notifications after `last_seq`, then what arrived live meanwhile, in order."""
    sent_upto = last_seq if last_seq is not None else -1
    try:
        if last_seq is not None:
            limit = current_app.config["SETTINGS"].CATCHUP_LIMIT
            with session_scope() as session:
                backlog = notifications.list_after(session, user_id, last_seq, limit)
                events = [notifications.to_event(n) for n in backlog]
            for event in events:
                socketio.emit("notification", event, to=sid, ignore_queue=True)
                sent_upto = event["seq"]
    finally:
        live = sorted(notifications_in(manager.release(sid)), key=lambda e: e.get("seq", 0))
        for event in live:
            if event.get("seq", 0) > sent_upto:
                socketio.emit("notification", event, to=sid, ignore_queue=True)


def register_handlers(
    socketio: SocketIO, manager: CatchUpRedisManager, presence: Presence, guard: SocketGuard
) -> None:
    """Attach the connection handlers; the first connection starts the background loops."""
    expiry = Expiry(socketio)
    heartbeat_started = False

    def heartbeat() -> None:
        while True:
            presence.heartbeat()
            socketio.sleep(HEARTBEAT_SECONDS)

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        nonlocal heartbeat_started
        settings = current_app.config["SETTINGS"]
        # Counted before the token check, so guessing tokens is slowed as well.
        if not guard.allow_handshake(client_address()):
            raise Refused("too many connection attempts", {"code": "rate_limited"})
        try:
            claims = tokens.verify(settings, _token_from_handshake(auth), "access")
        except Unauthorized as exc:
            # The client's connect_error carries `message` and `data.code`.
            raise Refused(exc.message, {"code": exc.code}) from None
        try:
            ensure_live(claims)
        except Unauthorized as exc:
            raise Refused(exc.message, {"code": exc.code}) from None
        with session_scope() as session:
            if session.get(User, claims.user_id) is None:
                raise Refused("unknown user", {"code": "token_invalid"})
        sid = request.sid
        if not presence.admit(sid, claims.user_id, settings.SOCKETS_PER_USER):
            metrics.count("socket_refusals", reason="too_many_connections")
            raise Refused(
                f"this user already has {settings.SOCKETS_PER_USER} connections",
                {"code": "too_many_connections"},
            )
        # Hold live emits, then join before reading the backlog: nothing committed in
        # between is missed, and nothing live overtakes the backlog.
        manager.hold(sid)
        join_room(user_room(claims.user_id))
        if claims.login_id:
            # Ending the login reaches this socket on whichever process holds it.
            join_room(login_room(claims.login_id))
        expiry.watch(sid, claims.expires_at)
        if not heartbeat_started:
            heartbeat_started = True
            socketio.start_background_task(heartbeat)
            guard.start(socketio.start_background_task)
        emit("connected", {"status": "ok", "user_id": claims.user_id})
        _send_backlog(socketio, manager, sid, claims.user_id, _last_seq(auth))

    @socketio.on("disconnect")
    def on_disconnect(*_: Any) -> None:
        manager.release(request.sid)
        presence.remove(request.sid)

    @socketio.on("*")
    def on_unknown_event(*_: Any) -> None:
        # Ignored, and counted: a client sending them is broken or probing.
        metrics.count("socket_unknown_events")

    @socketio.on("ping")
    def on_ping(data: Any = None) -> None:
        client_time = data.get("timestamp") if isinstance(data, dict) else None
        server_time = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        emit("pong", {"timestamp": client_time, "server_time": server_time})
