"""The only module that imports sendgrid: send one email, or write it to the dev outbox.

The official library builds the v3 request body (its `Mail` helper knows SendGrid's schema).
Its HTTP client, python_http_client, opens a new connection and rebuilds a urllib opener
for every call; at hundreds of emails per second that is most of a worker's CPU (and, on the
real API, a TLS handshake per email), so the body is POSTed over a keep-alive urllib3 pool.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import urllib3
from sendgrid import __version__ as sendgrid_version
from sendgrid.helpers.mail import CustomArg, From, Header, Mail, To

from core.models.base import utcnow
from core.services.deliveries import PermanentFailure, RetryLater
from core.services.emails import one_line
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)
# SendGrid's answers that no retry can fix: a bad request, bad key, no permission, too big.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 413, 415})
# When a 429 carries no usable X-RateLimit-Reset, wait this long.
DEFAULT_RATE_LIMIT_WAIT = 1.0
# Network failures worth another try: refused or reset connections, timeouts, bad responses.
NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered email to one recipient; `key` names it uniquely (the notification id)."""

    to_email: str
    to_name: str
    subject: str
    text: str
    html: str
    key: str
    custom_args: dict[str, str] = field(default_factory=dict)
    # Extra headers, e.g. List-Unsubscribe and List-Unsubscribe-Post (RFC 8058).
    headers: dict[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    """Sends one email; returns columns to store, raises PermanentFailure or RetryLater."""

    def send(self, email: OutgoingEmail) -> dict[str, Any]: ...


def provider_message(body: bytes | str | None) -> str:
    """The messages of a SendGrid error body ({"errors": [{"message", "field"}]}), else its text."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body or ""
    try:
        errors = json.loads(raw).get("errors") or []
        parts = [
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in errors
        ]
        return "; ".join(parts) or raw[:500]
    except (ValueError, AttributeError):
        return raw[:500]


def _reset_time(headers: Any) -> float:
    """The Unix time from X-RateLimit-Reset, or a short default wait from now."""
    value = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        reset = float(value)
    except (TypeError, ValueError):
        return time.time() + DEFAULT_RATE_LIMIT_WAIT
    return reset if reset > time.time() - 3600 else time.time() + DEFAULT_RATE_LIMIT_WAIT


class SendGridMailer:
    """SendGrid's v3 mail/send through the official client, with errors classified."""

    def __init__(
        self,
        api_key: str,
        host: str,
        from_email: str,
        from_name: str,
        timeout: float,
        connections: int = 64,
    ) -> None:
        self.url = f"{host.rstrip('/')}/v3/mail/send"
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"sendgrid/{sendgrid_version};python",
        }
        # Thread-safe; one kept-alive connection per send thread. Only a failed connect is
        # retried here: a POST that may have reached SendGrid is the task's call to repeat.
        self.pool = urllib3.PoolManager(
            maxsize=connections,
            timeout=urllib3.Timeout(total=timeout),
            retries=urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0),
        )
        self.sender = From(from_email, from_name)
        # After a 429 the whole account is limited: later sends wait without asking again.
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def _message(self, email: OutgoingEmail) -> dict[str, Any]:
        """The v3 body; the helper puts text/plain before text/html, as SendGrid requires."""
        mail = Mail(
            from_email=self.sender,
            to_emails=To(email.to_email, one_line(email.to_name) or None),
            subject=email.subject,
            plain_text_content=email.text,
            html_content=email.html,
        )
        if email.custom_args:
            mail.custom_arg = [CustomArg(k, str(v)) for k, v in email.custom_args.items()]
        if email.headers:
            mail.header = [Header(k, one_line(v)) for k, v in email.headers.items()]
        return mail.get()

    def send(self, email: OutgoingEmail) -> dict[str, Any]:
        """POST the email; 2xx is sent, 429 waits for the reset, 5xx/network retry, 4xx fail."""
        paused_until = self._paused_until
        if paused_until > time.time():
            raise RetryLater("SendGrid 429 earlier: held until the reset", not_before=paused_until)
        body = json.dumps(self._message(email)).encode()
        try:
            response = self.pool.request("POST", self.url, body=body, headers=self.headers)
        except NETWORK_ERRORS as exc:
            raise RetryLater(f"SendGrid unreachable: {type(exc).__name__}: {exc}") from None
        if 200 <= response.status < 300:
            return {"provider_message_id": response.headers.get("X-Message-Id")}
        raise self._classify(response.status, response.data, response.headers)

    def _classify(self, status: int, body: Any, headers: Any) -> Exception:
        """Turn an error answer into PermanentFailure or RetryLater (noting a 429's reset)."""
        detail = f"SendGrid {status}: {provider_message(body)}"
        if status == 429:
            reset = _reset_time(headers)
            with self._lock:
                self._paused_until = max(self._paused_until, reset)
            return RetryLater(detail, not_before=reset)
        if status in PERMANENT_STATUSES:
            return PermanentFailure(detail)
        return RetryLater(detail)


class OutboxMailer:
    """Local development: each email becomes `<key>.eml` in a folder, and a log line says where."""

    def __init__(self, directory: Path, from_email: str, from_name: str) -> None:
        self.directory = directory
        self.sender = Address(from_name, addr_spec=from_email)

    def message(self, email: OutgoingEmail) -> EmailMessage:
        """The email as MIME: multipart/alternative, text first, then HTML."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = Address(one_line(email.to_name), addr_spec=email.to_email)
        msg["Subject"] = one_line(email.subject)
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = make_msgid(domain="outbox.local")
        for name, value in email.custom_args.items():
            msg[f"X-Custom-{name.replace('_', '-')}"] = one_line(str(value))
        for name, value in email.headers.items():
            msg[name] = one_line(value)
        msg.set_content(email.text)
        msg.add_alternative(email.html, subtype="html")
        return msg

    def send(self, email: OutgoingEmail) -> dict[str, Any]:
        """Write the file atomically; the same key overwrites, so a repeat never adds a file."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{Path(email.key).name}.eml"
            partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            partial.write_bytes(bytes(self.message(email)))
            os.replace(partial, path)
        except OSError as exc:
            raise RetryLater(f"outbox not writable: {exc}") from None
        log.info("email to %s (%s) written to %s", email.to_email, email.subject, path)
        return {"provider_message_id": f"outbox:{path.name}"}


def build_mailer(settings: Settings) -> Mailer:
    """SendGrid when a key is set, otherwise the local outbox."""
    if settings.SENDGRID_API_KEY:
        return SendGridMailer(
            settings.SENDGRID_API_KEY,
            settings.SENDGRID_API_HOST,
            settings.SENDGRID_FROM_EMAIL,
            settings.SENDGRID_FROM_NAME,
            settings.SENDGRID_TIMEOUT_SECONDS,
            connections=settings.EMAIL_CONCURRENCY,
        )
    log.info("no SENDGRID_API_KEY: emails are written to %s", settings.OUTBOX_DIR)
    return OutboxMailer(
        settings.OUTBOX_DIR, settings.SENDGRID_FROM_EMAIL, settings.SENDGRID_FROM_NAME
    )


@lru_cache(maxsize=1)
def get_mailer() -> Mailer:
    """The process's mailer, built on first use (after the worker forks)."""
    return build_mailer(get_settings())
