"""Admission control for the REST API: shed the excess early, and answer outages with 503.

A web process serves at most `MAX_CONCURRENT_REQUESTS` API calls at once (its database pool
holds that many and more, so an admitted call never waits for a connection). A few more
(`MAX_WAITING_REQUESTS`) may wait, each for at most `MAX_QUEUE_WAIT_SECONDS`; anything beyond
that is refused at once with 503 `overloaded` and `Retry-After`, by a WSGI middleware in front
of Flask: before a request context, the rate limiter or the database. Before this, past the
process's capacity calls waited 30 s on SQLAlchemy's pool and then answered 500.

A database or Redis that cannot be reached is a 503 `unavailable` with `Retry-After`, not a
500: the client's call did nothing and can simply be made again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask
from flask.typing import ResponseReturnValue
from sqlalchemy import exc as sa_exc

from core import metrics
from core.settings import Settings
from web.errors import error_body, internal_error
from web.websocket_compression import WSGIApp

log = logging.getLogger(__name__)
# The paths admission control guards: everything that may take a database connection for a
# client (the API, and the unsubscribe links mail providers POST to). /health stays outside
# so a load balancer still sees a busy process as alive.
GUARDED_PREFIXES = ("/api/", "/unsubscribe/")
RETRY_AFTER_SECONDS = 2


class Gate:
    """At most `capacity` callers inside, at most `waiting` more queued, each for a bounded time."""

    def __init__(self, capacity: int, waiting: int, wait_seconds: float) -> None:
        self.slots = threading.BoundedSemaphore(capacity)
        self.queue = threading.BoundedSemaphore(waiting) if waiting else None
        self.wait_seconds = wait_seconds

    def enter(self) -> bool:
        """Take a slot, waiting in line if there is room in it; False when refused."""
        if self.slots.acquire(blocking=False):
            return True
        if self.queue is None or not self.queue.acquire(blocking=False):
            return False
        try:
            return self.slots.acquire(timeout=self.wait_seconds)
        finally:
            self.queue.release()

    def leave(self) -> None:
        """Give the slot back."""
        self.slots.release()


# The whole refusal, built once: refusing must cost far less than serving.
OVERLOADED_BODY = json.dumps(
    {"error": {"code": "overloaded", "message": "the server is busy; try again shortly"}}
).encode()
OVERLOADED_HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Length", str(len(OVERLOADED_BODY))),
    ("Retry-After", str(RETRY_AFTER_SECONDS)),
]


def with_admission(app: WSGIApp, gate: Gate, cors_origins: list[str]) -> WSGIApp:
    """Wrap a WSGI app so API calls pass the gate, and the excess is refused before Flask."""
    # flask-cors never sees a refusal made here; a browser must still be able to read it.
    cors = {
        origin: [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Expose-Headers", "Retry-After"),
            ("Vary", "Origin"),
        ]
        for origin in cors_origins
    }

    # A plain function for the reason given in web/websocket_compression.py.
    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(GUARDED_PREFIXES) or environ.get("REQUEST_METHOD") == "OPTIONS":
            return app(environ, start_response)
        if not gate.enter():
            metrics.count("overloaded")
            origin = cors.get(environ.get("HTTP_ORIGIN", ""), [])
            start_response("503 Service Unavailable", [*OVERLOADED_HEADERS, *origin])
            return [OVERLOADED_BODY]
        try:
            # Flask builds the whole response before it returns: the view's work is done here.
            return app(environ, start_response)
        finally:
            gate.leave()

    return middleware


def _unavailable(exc: Exception) -> ResponseReturnValue:
    """503 for a database or Redis that cannot be reached."""
    part = "Redis" if isinstance(exc, redis.RedisError) else "the database"
    first_line = (str(exc).splitlines() or [""])[0]
    log.warning("%s unreachable: %s: %s", part, type(exc).__name__, first_line)
    metrics.count("unavailable", part="redis" if part == "Redis" else "database")
    body, status = error_body(503, "unavailable", f"{part} is unreachable; try again shortly")
    return body, status, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _is_connection_error(exc: sa_exc.DBAPIError) -> bool:
    """Whether a database error is the server's state, not the statement's.

    OperationalError covers a refused or dropped connection, and also the transient refusals
    a retry cures (a deadlock, a statement timeout, SQLite's "database is locked").
    """
    return exc.connection_invalidated or isinstance(
        exc, sa_exc.OperationalError | sa_exc.InterfaceError
    )


def _database_error(exc: sa_exc.DBAPIError) -> ResponseReturnValue:
    """A lost database connection is 503; anything else stays the bug it is (500, logged)."""
    if _is_connection_error(exc):
        return _unavailable(exc)
    return internal_error(exc)


def init_admission(app: Flask, settings: Settings) -> Gate:
    """Map outages to 503, and return the gate for `with_admission` to put in front of Flask."""
    app.register_error_handler(sa_exc.TimeoutError, _unavailable)
    app.register_error_handler(sa_exc.DBAPIError, _database_error)
    app.register_error_handler(redis.ConnectionError, _unavailable)
    app.register_error_handler(redis.TimeoutError, _unavailable)
    return Gate(
        settings.MAX_CONCURRENT_REQUESTS,
        settings.MAX_WAITING_REQUESTS,
        settings.MAX_QUEUE_WAIT_SECONDS,
    )
