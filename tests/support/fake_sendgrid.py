"""A local stand-in for SendGrid's v3 mail/send, over real HTTP on loopback, scriptable."""

from __future__ import annotations

import base64
import collections
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.sendgrid_checks import error as _error
from tests.support.sendgrid_checks import validate
from tests.support.stand_in import StandIn

MAX_BODY = 30 * 1024 * 1024


@dataclass
class Accepted:
    """One message SendGrid would deliver: the request body and what it answered."""

    body: dict[str, Any]
    message_id: str
    at: float = field(default_factory=time.monotonic)

    @property
    def to(self) -> str:
        """The first recipient's address."""
        return str(self.body["personalizations"][0]["to"][0]["email"])

    @property
    def subject(self) -> str:
        """The message subject."""
        return str(self.body.get("subject") or self.body["personalizations"][0].get("subject"))

    @property
    def custom_args(self) -> dict[str, str]:
        """Message-wide custom_args merged with the first personalization's."""
        return {
            **self.body.get("custom_args", {}),
            **self.body["personalizations"][0].get("custom_args", {}),
        }

    @property
    def headers(self) -> dict[str, str]:
        """The message's extra headers (List-Unsubscribe…)."""
        return dict(self.body.get("headers") or {})

    def content(self, mime: str) -> str:
        """The value of one content part, e.g. 'text/plain'."""
        return next(c["value"] for c in self.body["content"] if c["type"] == mime)


@dataclass
class Answered:
    """One request and the status it got, for counting requests per recipient."""

    status: int
    to: str | None
    at: float = field(default_factory=time.monotonic)


class EventSigner:
    """SendGrid's Event Webhook key pair: signs posts; its public key goes in the settings."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """The verification key, base64 DER as SendGrid's settings page shows it."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: str) -> str:
        """The signature header value for a webhook body, as SendGrid computes it."""
        raw = self.private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode()


class FakeSendGrid(StandIn):
    """Answers POST /v3/mail/send like SendGrid; tests script failures and read what arrived."""

    def __init__(self, api_key: str = "SG.test-key", latency: float = 0.0) -> None:
        self.api_key = api_key
        self.latency = latency
        self.accepted: list[Accepted] = []
        self.answered: list[Answered] = []
        self.rate_limit_seconds = 1.0
        self._script: collections.deque[int] = collections.deque()
        self._refuse: dict[str, tuple[int, str]] = {}
        self._cond = threading.Condition()
        self._events: queue.Queue[dict[str, Any] | None] | None = None
        self.webhook_url: str | None = None
        self.signer = EventSigner()
        super().__init__(_Handler)

    # --- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Stop serving and stop posting webhook events."""
        super().close()
        if self._events is not None:
            self._events.put(None)

    # --- scripting ---------------------------------------------------------------

    def script(self, *statuses: int) -> None:
        """Answer the next valid requests with these statuses (429, 500, 400…), in order."""
        with self._cond:
            self._script.extend(statuses)

    def refuse(
        self, address: str, status: int = 400, message: str = "Does not contain a valid address."
    ) -> None:
        """Always answer `status` with `message` for mail to `address`."""
        with self._cond:
            self._refuse[address.lower()] = (status, message)

    @property
    def public_key(self) -> str:
        """The Event Webhook verification key to configure (SENDGRID_WEBHOOK_PUBLIC_KEY)."""
        return self.signer.public_key

    def post_events_to(self, url: str) -> None:
        """Post signed 'processed' and 'delivered' events to `url` for every accepted message."""
        self.webhook_url = url
        self._events = queue.Queue()
        threading.Thread(target=self._post_events, daemon=True).start()

    # --- reading -----------------------------------------------------------------

    def messages(self) -> list[Accepted]:
        """A snapshot of the accepted messages."""
        with self._cond:
            return list(self.accepted)

    def requests_to(self, address: str) -> list[Answered]:
        """Every answered request addressed to `address`."""
        with self._cond:
            return [a for a in self.answered if a.to == address.lower()]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Accepted]:
        """Wait until at least `count` messages were accepted; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.accepted) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    subjects = [a.subject for a in self.accepted]
                    raise AssertionError(f"expected {count} emails, got {subjects}")
                self._cond.wait(remaining)
            return list(self.accepted)

    # --- serving -----------------------------------------------------------------

    def answer(self, headers: Any, raw: bytes) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """Decide the answer to one request: (status, headers, JSON body or None)."""
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        problem = validate(body) if body is not None else _error("Bad Request")
        to = None if problem else str(body["personalizations"][0]["to"][0]["email"]).lower()
        extra: dict[str, str] = {}
        reply: dict[str, Any] | None = None
        with self._cond:
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                status = 401
                reply = _error("The provided authorization grant is invalid, expired, or revoked")
            elif problem is not None:
                status, reply = 400, problem
            elif to in self._refuse:
                status, message = self._refuse[to]
                reply = _error(message, "personalizations.0.to.0.email")
            elif self._script:
                status = self._script.popleft()
                extra, reply = self._scripted(status)
            else:
                status = 202
                extra = {"X-Message-Id": uuid.uuid4().hex[:22]}
                accepted = Accepted(body, extra["X-Message-Id"])
                self.accepted.append(accepted)
                if self._events is not None:
                    event = {
                        **accepted.custom_args,
                        "email": to,
                        "sg_message_id": accepted.message_id,
                    }
                    self._events.put(event)
            self.answered.append(Answered(status, to))
            self._cond.notify_all()
        return status, extra, reply

    def _scripted(self, status: int) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Headers and body of a scripted failure."""
        if status == 429:
            reset = int(time.time() + self.rate_limit_seconds + 0.999)
            headers = {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            return headers, _error("too many requests")
        if status >= 500:
            return {}, _error("Internal server error")
        return {}, _error("Bad Request")

    def _post_events(self) -> None:
        """Post each accepted message's events, signed, like SendGrid's Event Webhook."""
        assert self._events is not None
        while True:
            item = self._events.get()
            if item is None or self.webhook_url is None:
                return
            now = int(time.time())
            events = [
                {**item, "event": name, "timestamp": now, "sg_event_id": uuid.uuid4().hex}
                for name in ("processed", "delivered")
            ]
            for _ in range(20):  # SendGrid retries failed posts too
                try:
                    if self.send_events(events).ok:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.25)

    def send_events(self, events: list[dict[str, Any]]) -> requests.Response:
        """Post `events` to the webhook now, signed: an unsubscribe, a bounce, a replay."""
        assert self.webhook_url is not None, "post_events_to() first"
        body = json.dumps(events).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": self.signer.sign(body, stamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }
        return requests.post(self.webhook_url, data=body, headers=headers, timeout=5)


class _Handler(BaseHTTPRequestHandler):
    """HTTP glue: read the request, wait the latency, write the fake's answer."""

    fake: FakeSendGrid
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path.rstrip("/") != "/v3/mail/send":
            self._reply(404, {}, _error("not found"))
            return
        if length > MAX_BODY:
            self._reply(413, {}, _error("Payload Too Large"))
            return
        raw = self.rfile.read(length)
        if self.fake.latency:
            time.sleep(self.fake.latency)
        status, headers, body = self.fake.answer(self.headers, raw)
        self._reply(status, headers, body)

    def _reply(self, status: int, headers: dict[str, str], body: dict[str, Any] | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
