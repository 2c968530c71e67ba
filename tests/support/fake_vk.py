"""A local stand-in for the VK API's community messages, over real HTTP on loopback, scriptable.

Like VK, it answers errors with HTTP 200 and {"error": {...}}, drops a repeated
(peer_id, random_id) without sending twice, and counts breaches of the 20 calls/s limit of a
community token instead of enforcing it, so a test can assert there were none.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.stand_in import StandIn

MAX_BODY = 1024 * 1024
MAX_MESSAGE_LENGTH = 4096
# A community token may make 20 calls per second.
CALLS_PER_SECOND = 20
WINDOW = 1.0
# API versions from 5.194 answer groups.getById as {"groups": [...], "profiles": [...]}.
GROUPS_OBJECT_SINCE = (5, 194)
ERROR_MESSAGES = {
    1: "Unknown error occurred",
    3: "Unknown method passed",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    8: "Invalid request: v (version) is required",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied",
    27: "Group authorization failed: method is unavailable with group auth.",
    28: "Application authorization failed: method is unavailable with service token.",
    100: "One of the parameters specified was missing or invalid",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    914: "Message is too long",
}


def error_body(code: int, method: str, detail: str = "", **params: Any) -> dict[str, Any]:
    """VK's error answer for `code`, echoing the request's parameters as VK does."""
    message = ERROR_MESSAGES.get(code, "Unknown error occurred")
    request_params = [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
    request_params += [{"key": k, "value": str(v)} for k, v in params.items()]
    return {
        "error": {
            "error_code": code,
            "error_msg": f"{message}: {detail}" if detail else message,
            "request_params": request_params,
        }
    }


@dataclass
class VkMessage:
    """One message the stand-in accepted (VK would deliver it)."""

    peer_id: str
    random_id: int
    message: str
    message_id: int
    params: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class VkRequest:
    """One API call and what it got: an error code, or None for a response."""

    method: str
    peer_id: str | None
    error_code: int | None
    http_status: int = 200
    at: float = field(default_factory=time.monotonic)


def _version(value: str) -> tuple[int, int]:
    """ "5.199" as (5, 199); unreadable versions read as the oldest."""
    major, _, minor = value.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return 0, 0


class FakeVk(StandIn):
    """Answers the VK API for one community; tests script errors and read what was sent."""

    def __init__(
        self,
        token: str = "vk1.a.test-community-token",
        group_id: int = 229000001,
        latency: float = 0.0,
        name: str = "Test community",
    ) -> None:
        self.token = token
        self.group_id = group_id
        self.name = name
        self.latency = latency
        self.accepted: list[VkMessage] = []
        self.requests: list[VkRequest] = []
        self.duplicates_suppressed = 0
        self._sent: dict[tuple[str, int], int] = {}
        # Every messages.send VK answered with a response: what the 20/s limit counts.
        self._call_times: list[float] = []
        self._errors: collections.deque[int] = collections.deque()
        self._server_errors: collections.deque[int] = collections.deque()
        self._forbidden: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        super().__init__(_Handler)

    # --- scripting ---------------------------------------------------------------

    def script_errors(self, *codes: int) -> None:
        """Answer the next messages.send calls with these error codes, in order (6, 9, 901…)."""
        with self._cond:
            self._errors.extend(codes)

    def fail_5xx(self, n: int, status: int = 502) -> None:
        """Answer the next `n` calls (any method) with HTTP `status` and a proxy's HTML page."""
        with self._cond:
            self._server_errors.extend([status] * n)

    def forbid(self, peer_id: str | int, code: int = 901) -> None:
        """Always refuse messages.send to `peer_id` with `code` (901 no permission, 902 privacy)."""
        with self._cond:
            self._forbidden[str(peer_id)] = code

    # --- reading -----------------------------------------------------------------

    def messages(self, peer_id: str | int | None = None) -> list[VkMessage]:
        """The accepted messages (to one peer when given)."""
        with self._cond:
            return [m for m in self.accepted if peer_id is None or m.peer_id == str(peer_id)]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[VkMessage]:
        """Wait until at least `count` messages were accepted; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.accepted) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    texts = [m.message[:40] for m in self.accepted]
                    raise AssertionError(f"expected {count} VK messages, got {texts}")
                self._cond.wait(remaining)
            return list(self.accepted)

    def max_per_second(self) -> int:
        """The most messages.send calls answered with a response within any 1.0 s window."""
        with self._cond:
            times = sorted(self._call_times)
        best, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= WINDOW:
                start += 1
            best = max(best, end - start + 1)
        return best

    def violations(self) -> list[str]:
        """Every stretch of more than 20 answered messages.send calls within 1 s."""
        with self._cond:
            times = sorted(self._call_times)
        found: list[str] = []
        start, over = 0, False
        for end, at in enumerate(times):
            while at - times[start] >= WINDOW:
                start += 1
            count = end - start + 1
            if count > CALLS_PER_SECOND and not over:
                found.append(f"community: {count} calls within {WINDOW} s")
            over = count > CALLS_PER_SECOND
        return found

    # --- serving -----------------------------------------------------------------

    def answer(self, path: str, params: dict[str, str], bearer: str | None) -> tuple[int, Any]:
        """Decide the answer to one call: (HTTP status, JSON body or text)."""
        method = path.removeprefix("/method/").strip("/")
        with self._cond:
            status, body = self._decide(method, params, bearer)
            code = body.get("error", {}).get("error_code") if isinstance(body, dict) else None
            self.requests.append(VkRequest(method, params.get("peer_id"), code, status))
            self._cond.notify_all()
        return status, body

    def _decide(self, method: str, params: dict[str, str], bearer: str | None) -> tuple[int, Any]:
        """The answer, under the lock (the scripts are consumed in call order)."""
        if method not in ("messages.send", "groups.getById"):
            return 200, error_body(3, method)
        if (params.get("access_token") or bearer) != self.token:
            return 200, error_body(5, method)
        if not params.get("v"):
            return 200, error_body(8, method)
        if self._server_errors:
            status = self._server_errors.popleft()
            return status, f"<html><body><h1>{status}</h1>nginx</body></html>"
        if method == "groups.getById":
            group = {
                "id": self.group_id,
                "name": self.name,
                "screen_name": f"club{self.group_id}",
                "is_closed": 0,
                "type": "group",
            }
            if _version(params["v"]) >= GROUPS_OBJECT_SINCE:
                return 200, {"response": {"groups": [group], "profiles": []}}
            return 200, {"response": [group]}
        return self._send(params)

    def _send(self, params: dict[str, str]) -> tuple[int, Any]:
        """messages.send: scripted errors, the real API's checks, the dedupe, then accept."""
        echo = {k: params[k] for k in ("peer_id", "random_id") if k in params}
        if self._errors:
            return 200, error_body(self._errors.popleft(), "messages.send", **echo)
        peer_id = params.get("peer_id") or params.get("user_id")
        if not peer_id or not peer_id.lstrip("-").isdigit():
            detail = "you should specify peer_id, user_id, domain, chat_id or user_ids param"
            return 200, error_body(100, "messages.send", detail, **echo)
        try:
            random_id = int(params["random_id"])
        except (KeyError, ValueError):
            return 200, error_body(100, "messages.send", "random_id is a required parameter")
        if not -(2**31) <= random_id < 2**31:
            return 200, error_body(100, "messages.send", "random_id not integer", **echo)
        text = params.get("message") or ""
        if not text.strip():
            return 200, error_body(100, "messages.send", "message is empty or invalid", **echo)
        if len(text) > MAX_MESSAGE_LENGTH:
            return 200, error_body(914, "messages.send", **echo)
        if peer_id in self._forbidden:
            return 200, error_body(self._forbidden[peer_id], "messages.send", **echo)
        self._call_times.append(time.monotonic())
        # random_id 0 asks VK not to deduplicate.
        key = (peer_id, random_id)
        if random_id and key in self._sent:
            self.duplicates_suppressed += 1
            return 200, {"response": self._sent[key]}
        message = VkMessage(peer_id, random_id, text, next(self._ids), dict(params))
        self.accepted.append(message)
        if random_id:
            self._sent[key] = message.message_id
        return 200, {"response": message.message_id}


def confirmation_event(group_id: int) -> dict[str, Any]:
    """The Callback API's confirmation request."""
    return {"type": "confirmation", "group_id": group_id}


def message_new_event(
    group_id: int, from_id: int, text: str, secret: str | None = None, api_version: str = "5.199"
) -> dict[str, Any]:
    """A Callback API `message_new` event, as VK posts it for a user's message to the community."""
    event: dict[str, Any] = {
        "type": "message_new",
        "event_id": uuid.uuid4().hex[:40],
        "v": api_version,
        "object": {
            "message": {
                "date": int(time.time()),
                "from_id": from_id,
                "id": 0,
                "out": 0,
                "peer_id": from_id,
                "text": text,
                "conversation_message_id": 1,
                "fwd_messages": [],
                "important": False,
                "random_id": 0,
                "attachments": [],
                "is_hidden": False,
            },
            "client_info": {
                "button_actions": ["text"],
                "keyboard": True,
                "inline_keyboard": True,
                "carousel": True,
                "lang_id": 0,
            },
        },
        "group_id": group_id,
    }
    if secret is not None:
        event["secret"] = secret
    return event


class _Handler(BaseHTTPRequestHandler):
    """HTTP glue: read the call's parameters, wait the latency, write the fake's answer."""

    fake: FakeVk
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: with Nagle on, the body waits for the client's
    # delayed ACK (40 ms), capping a sequential sender at 25 calls/s, under the limits tested.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(413, "<html><body><h1>413</h1>nginx</body></html>")
            return
        self._serve(self.rfile.read(length))

    def _serve(self, raw: bytes) -> None:
        if self.fake.latency:
            time.sleep(self.fake.latency)
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        # A body that is not UTF-8 carries no parameters VK could read.
        with contextlib.suppress(UnicodeDecodeError):
            params.update(parse_qsl(raw.decode(), keep_blank_values=True))
        auth = self.headers.get("Authorization") or ""
        bearer = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        self._reply(*self.fake.answer(parts.path, params, bearer))

    def _reply(self, status: int, body: Any) -> None:
        if isinstance(body, str):
            data, kind = body.encode(), "text/html"
        else:
            data, kind = json.dumps(body, ensure_ascii=False).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
