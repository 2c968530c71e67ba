"""The websocket environ middlewares: no compression offer, gunicorn's socket as eventlet.input."""

from __future__ import annotations

from typing import Any

from engineio.middleware import WSGIApp as EngineIOWSGIApp

from web.eventlet_input import SocketInput, with_eventlet_input
from web.websocket_compression import without_websocket_compression


def _seen_by(middleware: Any, environ: dict[str, Any]) -> dict[str, Any]:
    """The environ the wrapped app receives."""
    seen: dict[str, Any] = {}

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(env)
        return [b""]

    middleware(app)(environ, lambda *_: None)
    return seen


def test_compression_offer_is_withdrawn() -> None:
    """The client's permessage-deflate offer never reaches the websocket server."""
    seen = _seen_by(
        without_websocket_compression,
        {"HTTP_SEC_WEBSOCKET_EXTENSIONS": "permessage-deflate", "PATH_INFO": "/"},
    )
    assert "HTTP_SEC_WEBSOCKET_EXTENSIONS" not in seen


def test_gunicorn_socket_arrives_as_eventlet_input() -> None:
    """Eventlet's websocket finds gunicorn's socket where it looks first."""
    sock = object()
    seen = _seen_by(with_eventlet_input, {"gunicorn.socket": sock, "PATH_INFO": "/"})
    assert "gunicorn.socket" not in seen
    assert isinstance(seen["eventlet.input"], SocketInput)
    assert seen["eventlet.input"].get_socket() is sock


def test_engineio_keeps_our_eventlet_input() -> None:
    """engine.io's middleware then has nothing to adapt: no class defined per request."""
    sock = object()
    inner: dict[str, Any] = {}

    def flask_app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        inner.update(env)
        return [b""]

    engineio_app = EngineIOWSGIApp(None, flask_app)
    with_eventlet_input(engineio_app)({"gunicorn.socket": sock, "PATH_INFO": "/api"}, None)
    assert type(inner["eventlet.input"]) is SocketInput
    assert inner["eventlet.input"].get_socket() is sock


def test_an_existing_eventlet_input_is_left_alone() -> None:
    """Under eventlet's own server (no gunicorn), the environ passes through unchanged."""
    existing = object()
    seen = _seen_by(with_eventlet_input, {"eventlet.input": existing, "PATH_INFO": "/"})
    assert seen["eventlet.input"] is existing
