"""The admission gate: a bounded number inside, a bounded line, refusals built in front of Flask."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from web.admission import Gate, with_admission


def test_the_gate_admits_its_capacity_then_a_line_then_refuses() -> None:
    gate = Gate(capacity=2, waiting=1, wait_seconds=0.05)
    assert gate.enter() and gate.enter()
    began = time.monotonic()
    assert not gate.enter()  # waited its 50 ms in line, then refused
    assert time.monotonic() - began >= 0.04
    gate.leave()
    assert gate.enter()


def test_a_caller_in_line_gets_a_freed_slot() -> None:
    gate = Gate(capacity=1, waiting=1, wait_seconds=2)
    assert gate.enter()
    threading.Timer(0.05, gate.leave).start()
    assert gate.enter()


def test_with_no_line_the_excess_is_refused_at_once() -> None:
    gate = Gate(capacity=1, waiting=0, wait_seconds=5)
    assert gate.enter()
    began = time.monotonic()
    assert not gate.enter()
    assert time.monotonic() - began < 0.05


def _call(app: Any, path: str, origin: str = "") -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "POST", "HTTP_ORIGIN": origin}
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_the_refusal_is_the_api_s_error_and_readable_cross_origin() -> None:
    served: list[str] = []

    def flask_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        served.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    gate = Gate(capacity=1, waiting=0, wait_seconds=0)
    app = with_admission(flask_app, gate, ["https://app.example"])
    assert gate.enter()  # the one slot is taken
    status, headers, body = _call(app, "/api/campaigns", origin="https://app.example")
    assert status.startswith("503") and headers["Retry-After"] == "2"
    assert json.loads(body)["error"]["code"] == "overloaded"
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Origin" not in _call(app, "/api/x", origin="https://evil")[1]
    # Outside /api/ (health, sockets, the page) nothing waits at the gate.
    assert _call(app, "/health")[0] == "200 OK"
    gate.leave()
    assert _call(app, "/api/campaigns")[0] == "200 OK" and served == ["/health", "/api/campaigns"]
