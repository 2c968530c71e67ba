"""Websockets without permessage-deflate, as the Node.js socket.io server has them by default."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# Browsers and socket.io-client always offer permessage-deflate, and the websocket servers under
# both async modes (eventlet's, and simple-websocket's under gevent) accept it, then keep a zlib
# compressor per socket and compress every frame. For notifications of a few hundred bytes that
# cost ~100 KB of memory per idle socket and CPU on every emit, for next to no saving on the
# wire; socket.io's own Node.js server ships with it off (docs/BENCHMARKS.md, B1).
class WithoutWebSocketCompression:
    """WSGI middleware that withdraws the client's `Sec-WebSocket-Extensions` offer."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Pass the request on without the extension offer; the handshake then agrees none."""
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return self.app(environ, start_response)
