"""The web tier's Socket.IO Redis manager, which holds live emits while a socket catches up."""

from __future__ import annotations

import threading
import time
from typing import Any

import socketio

from core.rooms import LOGIN_ROOM_PREFIX, SESSION_REVOKED_EVENT, USER_ROOM_PREFIX
from web.room_index import RoomIndexMixin

# Longest the message-queue listener runs before it lets other green threads run, when no
# socket's queue has grown long: it bounds the wait of the first deliveries of a burst.
LISTENER_SLICE_SECONDS = 0.05
# Rooms of /health?deep=1's message-queue probes: answered by the listener, sent to no socket.
PROBE_ROOM_PREFIX = "probe:"


class CatchUpRedisManager(RoomIndexMixin, socketio.RedisManager):
    """Flask-SocketIO's Redis manager, plus a per-socket hold on user-room emits.

    While a socket receives its stored backlog, live notifications for its user are kept
    aside instead of sent, so the client sees the backlog oldest first and only then live
    events, and a client that drops seqs it has passed never loses one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.probes: dict[str, threading.Event] = {}
        self._last_yield = 0.0
        self._writers_behind = False

    def writers_behind(self) -> None:
        """Note that a socket's writer has fallen behind: yield after the message in hand."""
        self._writers_behind = True

    def hold(self, sid: str) -> None:
        """Start keeping aside the live emits addressed to this socket's user room."""
        with self._lock:
            self._held[sid] = []

    def release(self, sid: str) -> list[dict[str, Any]]:
        """Stop holding and return what was kept aside, as message-queue messages."""
        with self._lock:
            return self._held.pop(sid, [])

    def _drop_login(self, message: dict[str, Any], room: str) -> None:
        """Tell an ended login's sockets on this process why, then disconnect them."""
        namespace = message.get("namespace") or "/"
        sids = [sid for sid, _ in self.get_participants(namespace, room)]
        if not sids:
            return
        super()._handle_emit(message)
        for sid in sids:
            self.server.disconnect(sid, namespace=namespace, ignore_queue=True)

    def _handle_emit(self, message: dict[str, Any]) -> None:
        """Deliver a message, except to held sockets, which get it on release."""
        room = message.get("room")
        if isinstance(room, str) and room.startswith(PROBE_ROOM_PREFIX):
            # Proof that this process's listener reads the queue; other processes ignore it.
            probe = self.probes.get(room)
            if probe is not None:
                probe.set()
            return
        if (
            message.get("event") == SESSION_REVOKED_EVENT
            and isinstance(room, str)
            and room.startswith(LOGIN_ROOM_PREFIX)
        ):
            self._drop_login(message, room)
            return
        if self._held and isinstance(room, str) and room.startswith(USER_ROOM_PREFIX):
            namespace = message.get("namespace") or "/"
            with self._lock:
                held = [
                    sid for sid, _ in self.get_participants(namespace, room) if sid in self._held
                ]
                for sid in held:
                    self._held[sid].append(message)
            if held:
                skip = message.get("skip_sid") or []
                skip = skip if isinstance(skip, list) else [skip]
                message = {**message, "skip_sid": [*skip, *held]}
        super()._handle_emit(message)
        # The listener reads a burst of messages from its buffer without ever waiting, and
        # meanwhile every socket's writer (and every other green thread) waits, each queue
        # growing as if its client were slow (web/socket_guard.py cuts off a socket whose unsent
        # data passes the cap). A yield wakes every writer with something queued, and each sends
        # what it has: yielding after every message cost two thirds of B2's fan-out to 5,000
        # sockets (one wake per socket per message). So the listener yields once a writer falls
        # behind (the guard's call to writers_behind), and otherwise every 50 ms at most.
        now = time.monotonic()
        if self._writers_behind or now - self._last_yield >= LISTENER_SLICE_SECONDS:
            self._writers_behind = False
            self.server.sleep(0)
            self._last_yield = time.monotonic()


def start_listener(server: Any) -> CatchUpRedisManager:
    """Start the process's message-queue listener now, if no socket has started it yet.

    python-socketio starts it with the first socket; a web process then hears nothing and
    counts as no listener (deep health's `socketio_listeners`) until a client connects.
    """
    if not server.manager_initialized:
        server.manager_initialized = True
        server.manager.initialize()
    manager: CatchUpRedisManager = server.manager
    return manager


def notifications_in(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `notification` payloads among held messages."""
    payloads = []
    for message in messages:
        data = message.get("data")
        if message.get("event") == "notification" and isinstance(data, list) and data:
            payloads.append(data[0])
    return payloads
