"""Gunicorn's client socket as `eventlet.input`, so engine.io defines no class per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web.websocket_compression import WSGIApp


class SocketInput:
    """The `eventlet.input` shape eventlet's websocket reads the client socket from."""

    __slots__ = ("socket",)

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    def get_socket(self) -> Any:
        """The client's socket."""
        return self.socket


# Under gunicorn's eventlet worker the socket is in environ["gunicorn.socket"]; python-engineio's
# WSGI middleware (engineio/middleware.py, WSGIApp.__call__) adapts it by defining a new class on
# every request that has that key, and a websocket's environ keeps that class alive for the
# socket's life: ~2.9 KB per idle connection (B1), plus building a class on every API call.
# Handing eventlet the socket here, in the form it reads first, leaves engineio nothing to adapt.
# Not under gevent: simple-websocket needs "gunicorn.socket" to know it runs under gunicorn.
def with_eventlet_input(app: WSGIApp) -> WSGIApp:
    """Wrap a WSGI app so that gunicorn's socket arrives as `eventlet.input` instead."""

    # A plain function for the reason given in web/websocket_compression.py.
    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "gunicorn.socket" in environ and "eventlet.input" not in environ:
            environ["eventlet.input"] = SocketInput(environ.pop("gunicorn.socket"))
        return app(environ, start_response)

    return middleware
