"""A bare engine.io websocket client: what a hostile or broken client does, frame by frame."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

import websocket


class RawSocket:
    """One Socket.IO connection spoken by hand over websocket-client, with no client library."""

    def __init__(
        self,
        base_url: str,
        token: str,
        receive_buffer: int | None = None,
        headers: dict[str, str] | None = None,
        origin: str | None = None,
    ) -> None:
        url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        options = []
        if receive_buffer is not None:
            # A tiny window makes a client that stops reading stall the server's sends at once.
            options.append((socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer))
        self.ws = websocket.create_connection(
            url, timeout=10, sockopt=tuple(options), header=headers or {}, origin=origin
        )
        opened = self.ws.recv()
        assert opened.startswith("0"), opened
        self.ws.send("40" + json.dumps({"token": token}))
        # The `connected` event may come before the namespace's CONNECT answer (40, or 44 when
        # refused): read up to that answer.
        self.greeting = ""
        for _ in range(5):
            self.greeting = self.ws.recv()
            if self.greeting.startswith(("40", "44")):
                break

    @property
    def accepted(self) -> bool:
        """Whether the server accepted the Socket.IO connection."""
        return self.greeting.startswith("40")

    def emit(self, event: str, data: Any) -> None:
        """Send one Socket.IO event."""
        self.ws.send("42" + json.dumps([event, data]))

    def flood(self, event: str, count: int) -> tuple[int, float | None]:
        """Send `count` events as fast as possible: how many went out, and when it was cut off."""
        frame = "42" + json.dumps([event, {"timestamp": 0}])
        began = time.monotonic()
        for sent in range(count):
            try:
                self.ws.send(frame)
            except (OSError, websocket.WebSocketException):
                return sent, time.monotonic() - began
        return count, None

    def closed_by_server(self, timeout: float) -> float | None:
        """Read until the server closes the connection; seconds it took, None if it did not."""
        began = time.monotonic()
        self.ws.settimeout(0.5)
        while time.monotonic() - began < timeout:
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (OSError, websocket.WebSocketException):
                return time.monotonic() - began
            if not frame:
                return time.monotonic() - began
        return None

    def close(self) -> None:
        """Drop the connection, whatever state it is in."""
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.ws.close(timeout=1)
