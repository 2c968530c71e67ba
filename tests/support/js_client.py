"""Drives tests/js/live_client.mjs: the official socket.io-client in a Node.js process."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.support.paths import REPO_ROOT

JS_DIR = REPO_ROOT / "tests" / "js"


def js_client_unavailable() -> str | None:
    """Why the JS client cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        return "socket.io-client is not installed (run `make jsdeps`)"
    return None


class JsClient:
    """One Node.js socket.io-client connection; every event it prints is kept with its time."""

    def __init__(self, url: str, token: str | None, last_seq: int | None = None) -> None:
        args = ["node", str(JS_DIR / "live_client.mjs"), url, token or ""]
        if last_seq is not None:
            args.append(str(last_seq))
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Collect the JSON lines the Node process prints."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def send(self, command: str) -> None:
        """Ask the Node process to do something ("ping", "quit")."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_for(
        self, event: str, predicate: Callable[[Any], bool] = lambda _: True, timeout: float = 10
    ) -> dict[str, Any]:
        """The first recorded event of that name whose data matches, with its arrival time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for record in self.events:
                    if record["event"] == event and predicate(record["data"]):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {event!r} in {timeout}s; got {self.events!r}")
                self._cond.wait(remaining)

    def close(self) -> None:
        """Stop the Node process."""
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
