"""Socket.IO limits: handshakes per address, an event budget per socket, a cap on unsent data.

Each limit cuts off only the socket that broke it, and costs the others next to nothing:
- the event budget is checked on the engine.io message, before python-socketio parses the packet
  or spawns a green thread for its handler, so a flood is dropped where it is read;
- unsent data is measured when a packet is queued, only once the queue is long (its length a
  power of two, or a multiple of 64), and by a sweep once a second; a socket past
  `SOCKET_MAX_QUEUE_BYTES` loses its queue and its connection (the client catches up by `seq`
  when it returns). engine.io's writer takes the whole queue at once, so a stalled socket holds
  at most about twice the cap, however many sockets stall.
Frames over `SOCKET_MAX_MESSAGE_BYTES` are refused by the websocket server itself (engine.io's
`max_http_buffer_size`), and the cap on sockets per user lives with presence (web/presence.py).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from flask_socketio import SocketIO
from limits import parse_many

from core import metrics
from core.settings import Settings
from web.limits import limiter

log = logging.getLogger(__name__)
SWEEP_SECONDS = 1.0
# A queue this short cannot be near the cap; nothing measures it.
SHORT_QUEUE = 4
# A writer with this many packets waiting has fallen behind what is queued for it: the listener
# is told to let the writers run (web/socketio_manager.py) before the queue can grow towards
# the cap.
BEHIND_QUEUE = 8


def worth_measuring(length: int) -> bool:
    """Whether to add up a queue of this length: rarely enough to stay cheap as it grows."""
    return length >= SHORT_QUEUE and (length & (length - 1) == 0 or length % 64 == 0)


class EventBudget:
    """A token bucket: `rate` events a second on average, at most `burst` at once."""

    __slots__ = ("tokens", "stamp")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, rate: float, burst: float) -> bool:
        """Spend one event if the bucket has one."""
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


# Marks a socket cut off for flooding: whatever it still had in flight is dropped unread.
CUT_OFF = EventBudget(0, 0)


def queued_bytes(eio_socket: Any) -> int:
    """The size of the packets waiting in an engine.io socket's send queue."""
    pending = getattr(eio_socket.queue, "queue", None)
    if not pending:
        return 0
    # None in the queue is the writer's signal to stop.
    datas = (getattr(p, "data", None) for p in list(pending))
    return sum(len(d) for d in datas if isinstance(d, str | bytes))


def _raw_socket(environ: dict[str, Any] | None) -> socket.socket | None:
    """The TCP socket of a websocket's handshake request, under eventlet or gevent."""
    if not environ or environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return None
    wrapped = environ.get("eventlet.input")
    raw = wrapped.get_socket() if wrapped is not None else environ.get("gunicorn.socket")
    return raw if hasattr(raw, "shutdown") else None


class SocketGuard:
    """The limits of one web process's sockets, installed on its Socket.IO server."""

    def __init__(self, socketio: SocketIO, settings: Settings) -> None:
        self.socketio = socketio
        self.settings = settings
        self.rate_limits = settings.RATE_LIMIT_ENABLED
        self.connect_limits = parse_many(settings.RATE_LIMIT_SOCKET_CONNECT)
        self.budgets: dict[str, EventBudget] = {}
        self.cutting: set[str] = set()
        self.sweeping = False

    def install(self, writers_behind: Callable[[], None] = lambda: None) -> None:
        """Wrap the engine.io handlers; `writers_behind` is called when a socket's queue is long."""
        eio = self.socketio.server.eio
        on_message = eio.handlers["message"]
        on_disconnect = eio.handlers["disconnect"]
        send_packet = eio.send_packet

        def message(eio_sid: str, data: Any) -> Any:
            if self.rate_limits and not self._spend(eio_sid):
                return None
            return on_message(eio_sid, data)

        def disconnect(eio_sid: str, *reason: Any) -> Any:
            if self.budgets.get(eio_sid) is not CUT_OFF:
                self.budgets.pop(eio_sid, None)
            return on_disconnect(eio_sid, *reason)

        def queue_packet(eio_sid: str, pkt: Any) -> None:
            send_packet(eio_sid, pkt)
            eio_socket = eio.sockets.get(eio_sid)
            if eio_socket is None:
                return
            length = eio_socket.queue.qsize()
            if length >= BEHIND_QUEUE:
                writers_behind()
            if worth_measuring(length):
                self._check_queue(eio_sid, eio_socket)

        eio.on("message", message)
        eio.on("disconnect", disconnect)
        # Every emit, to a room or to one socket, ends in send_packet (send() calls it too).
        eio.send_packet = queue_packet

    def allow_handshake(self, address: str) -> bool:
        """Count a connection attempt from an address; False once it is over its limit."""
        if not self.rate_limits:
            return True
        try:
            # Every limit is hit, so a long window still counts what a short one refuses.
            verdicts = [
                limiter.limiter.hit(item, "socket-connect", address) for item in self.connect_limits
            ]
        except Exception as exc:
            # Fail open: the token check and the per-user cap still stand (docs/ARCHITECTURE.md).
            log.warning("socket handshake limit not checked (limiter storage): %s", exc)
            return True
        if all(verdicts):
            return True
        metrics.count("socket_refusals", reason="rate_limited")
        return False

    def start(self, spawn: Callable[[Callable[[], None]], Any]) -> None:
        """Start the sweep over unsent data, once per process."""
        if not self.sweeping:
            self.sweeping = True
            spawn(self._sweep_forever)

    # --- the event budget ------------------------------------------------------------------

    def _spend(self, eio_sid: str) -> bool:
        """Let one event through, or cut the socket off once it has spent its budget."""
        now = time.monotonic()
        budget = self.budgets.get(eio_sid)
        if budget is None:
            burst = self.settings.SOCKET_EVENT_BURST
            budget = self.budgets[eio_sid] = EventBudget(burst, now)
        elif budget is CUT_OFF:
            # Let the writer run and close the connection instead of reading the rest of a flood.
            self.socketio.sleep(0)
            return False
        if budget.take(
            now, self.settings.SOCKET_EVENTS_PER_SECOND, self.settings.SOCKET_EVENT_BURST
        ):
            return True
        self.budgets[eio_sid] = CUT_OFF
        log.warning("socket %s cut off: over its event budget", eio_sid)
        self.cut_off(eio_sid, "event_budget")
        return False

    # --- unsent data -----------------------------------------------------------------------

    def _sweep_forever(self) -> None:
        """Once a second: cut off slow consumers, forget gone sockets, write the counters."""
        while True:
            self.socketio.sleep(SWEEP_SECONDS)
            try:
                self.sweep()
                metrics.flush()
            except Exception:
                log.exception("socket sweep failed")

    def sweep(self) -> None:
        """Cut off every socket whose unsent data is over the cap."""
        eio = self.socketio.server.eio
        for eio_sid, eio_socket in list(eio.sockets.items()):
            if eio_socket.queue.qsize() >= SHORT_QUEUE:
                self._check_queue(eio_sid, eio_socket)
        for eio_sid in [s for s, b in self.budgets.items() if b is CUT_OFF]:
            if eio_sid not in eio.sockets:
                del self.budgets[eio_sid]

    def _check_queue(self, eio_sid: str, eio_socket: Any) -> None:
        """Cut a socket off, in the background, once its unsent data is over the cap."""
        if eio_socket.closed or eio_socket.closing or eio_sid in self.cutting:
            return
        size = queued_bytes(eio_socket)
        cap = self.settings.SOCKET_MAX_QUEUE_BYTES
        if size > cap:
            log.warning("socket %s cut off: %d bytes unsent (cap %d)", eio_sid, size, cap)
            # Not inside the emit that is going over the room's sockets: disconnecting leaves
            # rooms. The queue is emptied there at once.
            self.cutting.add(eio_sid)
            self.socketio.start_background_task(self.cut_off, eio_sid, "slow_consumer")

    def cut_off(self, eio_sid: str, reason: str) -> None:
        """Disconnect a socket at once: drop its unsent packets and close its TCP connection."""
        self.cutting.discard(eio_sid)
        server = self.socketio.server
        eio_socket = server.eio.sockets.get(eio_sid)
        # `closing` from the start of close(): its disconnect handler may yield (Redis), and a
        # sweep meanwhile must not cut the socket off, and count it, a second time.
        if eio_socket is None or eio_socket.closed or eio_socket.closing:
            return
        metrics.count("socket_disconnects", reason=reason)
        raw = _raw_socket(server.environ.get(eio_sid))
        # abort: no goodbye packet, which would only queue behind what the client does not read.
        eio_socket.close(wait=False, abort=True)
        pending = getattr(eio_socket.queue, "queue", None)
        if pending is not None:
            pending.clear()
            eio_socket.queue.put(None)  # the writer's signal to stop
        if raw is not None:
            # A writer blocked on a full TCP buffer wakes with an error instead of waiting for
            # the 45 s socket timeout, and the reader stops reading a flood.
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)
