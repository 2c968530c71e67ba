"""HTTP and Socket.IO clients that talk to a running test stack."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import socketio

DEFAULT_PASSWORD = "correct-horse-battery-staple-42"
REQUEST_TIMEOUT = 15.0


@dataclass
class Account:
    """A registered user with their credentials and tokens."""

    user: dict[str, Any]
    access_token: str
    refresh_token: str
    email: str
    password: str

    @property
    def id(self) -> str:
        """Return the user's id."""
        return str(self.user["id"])


def unique_email(prefix: str = "user") -> str:
    """Return an email address no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


class Api:
    """A requests.Session bound to one base URL and, optionally, one access token."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = requests.Session()

    def as_user(self, who: Account | str) -> Api:
        """Return a new client for the same server, signed in as `who` (account or token)."""
        token = who.access_token if isinstance(who, Account) else who
        return Api(self.base_url, token)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request and return the response whatever its status."""
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET `path`."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        """POST `json` to `path`."""
        return self.request("POST", path, json=json, **kwargs)

    def register(
        self,
        role: str = "advertiser",
        locale: str = "en",
        name: str | None = None,
        email: str | None = None,
        password: str = DEFAULT_PASSWORD,
    ) -> Account:
        """Register a new user through the REST API and return the account."""
        email = email or unique_email(role)
        body = {
            "email": email,
            "password": password,
            "name": name or f"Test {role}",
            "role": role,
            "locale": locale,
        }
        response = self.post("/api/auth/register", json=body)
        assert response.status_code == 201, f"register: {response.status_code} {response.text}"
        data = response.json()
        return Account(data["user"], data["access_token"], data["refresh_token"], email, password)


@dataclass
class Received:
    """One event a LiveClient received, in arrival order."""

    event: str
    data: Any
    at: float = field(default_factory=time.monotonic)


class LiveClient:
    """A python-socketio client that records every event it receives."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        last_seq: int | None = None,
        transports: Sequence[str] = ("websocket",),
        reconnection: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.last_seq = last_seq
        self.transports = list(transports)
        self.headers = headers or {}
        self.events: list[Received] = []
        self.connect_errors: list[Any] = []
        self._cond = threading.Condition()
        self.sio = socketio.Client(reconnection=reconnection)
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._record_connect_error)

    def _record(self, event: str, data: Any = None) -> None:
        """Store one event and wake up anyone waiting."""
        with self._cond:
            self.events.append(Received(event, data))
            self._cond.notify_all()

    def _record_connect_error(self, data: Any = None) -> None:
        """Keep the server's refusal reason for assertions."""
        with self._cond:
            self.connect_errors.append(data)
            self._cond.notify_all()

    def connect(self, wait_timeout: float = 10.0) -> LiveClient:
        """Connect with auth={'token', 'last_seq'}; raises socketio ConnectionError if refused."""
        auth: dict[str, Any] = {}
        if self.token is not None:
            auth["token"] = self.token
        if self.last_seq is not None:
            auth["last_seq"] = self.last_seq
        self.sio.connect(
            self.base_url,
            headers=self.headers,
            auth=auth or None,
            transports=self.transports,
            socketio_path="socket.io",
            wait_timeout=wait_timeout,
        )
        return self

    def disconnect(self) -> None:
        """Close the connection if it is open."""
        if self.sio.connected:
            self.sio.disconnect()

    def __enter__(self) -> LiveClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def received(self, event: str = "notification") -> list[Any]:
        """Return a snapshot of the payloads received for `event`, oldest first."""
        with self._cond:
            return [r.data for r in self.events if r.event == event]

    @property
    def notifications(self) -> list[Any]:
        """Return every `notification` payload received so far."""
        return self.received("notification")

    @property
    def connected_events(self) -> list[Any]:
        """Return every `connected` payload received so far."""
        return self.received("connected")

    def wait_for(
        self, predicate: Callable[[Any], bool], timeout: float = 10.0, event: str = "notification"
    ) -> Any:
        """Wait for the first `event` payload matching `predicate` and return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for record in self.events:
                    if record.event == event and predicate(record.data):
                        return record.data
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [r.data for r in self.events if r.event == event]
                    raise AssertionError(f"no matching {event!r} in {timeout}s; got {seen!r}")
                self._cond.wait(remaining)

    def wait_for_count(
        self, n: int, timeout: float = 10.0, event: str = "notification"
    ) -> list[Any]:
        """Wait until at least `n` `event` payloads arrived and return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = [r.data for r in self.events if r.event == event]
                if len(seen) >= n:
                    return seen
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {n} {event!r} events in {timeout}s, got {len(seen)}: {seen!r}"
                    )
                self._cond.wait(remaining)
