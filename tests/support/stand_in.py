"""What every provider stand-in shares: a threaded HTTP server on a free loopback port."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietServer(ThreadingHTTPServer):
    """A threading server that does not print a traceback when a killed client hangs up."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sender killed mid-request is a scenario under test, not an error."""


class StandIn:
    """A provider's stand-in, served from a background thread; its handler reads `self.fake`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        bound = type("Handler", (handler,), {"fake": self})
        self.server = QuietServer(("127.0.0.1", 0), bound, bind_and_activate=False)
        # Bursts of sends arrive at once: the default backlog of 5 would drop SYNs and stall them.
        self.server.request_queue_size = 1024
        self.server.daemon_threads = True
        self.server.server_bind()
        self.server.server_activate()
        # shutdown() waits for serve_forever's next poll: 0.5 s by default, on every close.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The stand-in's base URL, for the provider's API host setting."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"
