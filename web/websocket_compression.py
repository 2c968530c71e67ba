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
def without_websocket_compression(app: WSGIApp) -> WSGIApp:
    """Wrap a WSGI app so that the client's `Sec-WebSocket-Extensions` offer never reaches it."""

    # A plain function, not an instance with __call__: CPython 3.11 runs a Python function call
    # in the caller's C frame, while calling an instance recurses in C, and every idle websocket's
    # green thread keeps a saved copy of its C stack (~0.8 KB per such level, B1).
    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return app(environ, start_response)

    return middleware
