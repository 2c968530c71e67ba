"""The only module that talks to the Telegram Bot API: send a message, set the webhook, getMe.

Plain HTTPS over a keep-alive urllib3 pool (as worker/mailer.py does for SendGrid): a bot SDK
would bring its own event loop or a connection per call for three methods. Every failure is a
ProviderError whose kind tells the delivery engine what to do. The token is part of every URL,
so it is redacted from every error text this module produces.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3

from worker.provider_errors import ProviderError

# The Bot API's limit on a message's text (after entity parsing).
MAX_TEXT_LENGTH = 4096
# Network failures worth another try: refused or reset connections, timeouts, bad responses.
NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)
# A 429 whose parameters carry no usable retry_after waits this long.
DEFAULT_RETRY_AFTER = 1.0
# 400 descriptions that mean the chat is gone for good: sending there again cannot succeed.
# "group chat was upgraded" names a new chat id, but only the user relinking can make it ours.
GONE_CHAT_MARKERS = (
    "chat not found",
    "peer_id_invalid",
    "group chat was upgraded",
    "user not found",
)
REDACTED = "<redacted>"


def _describe(body: Any, raw: bytes) -> str:
    """The Bot API's description of an error answer, else the start of its raw text."""
    if isinstance(body, dict) and body.get("description"):
        return str(body["description"])
    return raw[:300].decode("utf-8", "replace").strip() or "(empty body)"


def _retry_after(body: Any) -> float:
    """The seconds a 429 asks to wait (parameters.retry_after), else a short default."""
    params = body.get("parameters") if isinstance(body, dict) else None
    try:
        value = float(params["retry_after"]) if isinstance(params, dict) else DEFAULT_RETRY_AFTER
    except (KeyError, TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return value if value > 0 else DEFAULT_RETRY_AFTER


def classify(status: int, body: Any, raw: bytes = b"") -> ProviderError:
    """Turn a Bot API answer that is not a success into a ProviderError (see SPEC.md)."""
    detail = f"Telegram {status}: {_describe(body, raw)}"
    if status == 429:
        return ProviderError("retry", detail, retry_after=_retry_after(body))
    if status == 403:
        # Blocked by the user, user deactivated, bot kicked from the group: nothing to send to.
        return ProviderError("unlink", detail)
    if status == 400:
        description = _describe(body, raw).lower()
        if any(marker in description for marker in GONE_CHAT_MARKERS):
            return ProviderError("unlink", detail)
        return ProviderError("failed", detail)
    if status in (401, 404):
        # The Bot API answers a revoked or mistyped token with 401, a malformed one with 404.
        return ProviderError("auth", detail)
    if 400 <= status < 500:
        return ProviderError("failed", detail)
    # 5xx, and 2xx answers without "ok": Telegram may well answer properly next time.
    return ProviderError("retry", detail)


class TelegramBot:
    """One bot's Bot API calls over a shared keep-alive pool; safe to use from many threads."""

    def __init__(self, token: str, api_base: str, timeout: float, connections: int = 32) -> None:
        if not token:
            raise ValueError("a Telegram bot token is required")
        self._token = token
        self._base = f"{api_base.rstrip('/')}/bot{token}"
        self.api_base = api_base.rstrip("/")
        # Only a failed connect is retried here: a POST that may have reached Telegram is the
        # engine's call to repeat (after the rate limiter says so).
        self.pool = urllib3.PoolManager(
            maxsize=connections,
            timeout=urllib3.Timeout(total=timeout),
            retries=urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0),
        )

    def __repr__(self) -> str:
        """Name the API base, never the token."""
        return f"TelegramBot(api_base={self.api_base!r})"

    def redact(self, text: str) -> str:
        """`text` with the bot token replaced, for anything that may reach a log."""
        return text.replace(self._token, REDACTED)

    def _call(self, method: str, payload: dict[str, Any] | None = None) -> Any:
        """POST `payload` as JSON to `method`; the answer's `result`, or a ProviderError."""
        body = json.dumps(payload or {}).encode()
        try:
            response = self.pool.request(
                "POST",
                f"{self._base}/{method}",
                body=body,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
        except NETWORK_ERRORS as exc:
            # urllib3's messages quote the URL, token included.
            detail = self.redact(f"Telegram {method} unreachable: {type(exc).__name__}: {exc}")
            raise ProviderError("retry", detail) from None
        raw = response.data or b""
        try:
            answer: Any = json.loads(raw)
        except ValueError:
            answer = None
        if 200 <= response.status < 300 and isinstance(answer, dict) and answer.get("ok"):
            return answer.get("result")
        raise self._error(classify(response.status, answer, raw)) from None

    def _error(self, error: ProviderError) -> ProviderError:
        """The same error with the token redacted from its detail."""
        return ProviderError(error.kind, self.redact(error.detail), error.retry_after)

    def send_message(
        self,
        chat_id: str,
        text: str,
        button_text: str | None = None,
        button_url: str | None = None,
    ) -> str:
        """Send HTML `text` (user-written parts already escaped) to a chat; its message_id."""
        if (button_text is None) != (button_url is None):
            raise ValueError("button_text and button_url go together")
        payload: dict[str, Any] = {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": "HTML",
            # A notification's own button is the link; previews of links in the text are noise.
            "disable_web_page_preview": True,
        }
        if button_text is not None:
            payload["reply_markup"] = {
                "inline_keyboard": [[{"text": button_text, "url": button_url}]]
            }
        result = self._call("sendMessage", payload)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if message_id is None:
            # Sent or not, we cannot tell; a resend risks a duplicate, losing it is worse.
            raise ProviderError("retry", "Telegram sendMessage: no message_id in the answer")
        return str(message_id)

    def set_webhook(self, url: str, secret_token: str) -> None:
        """Point the bot's updates at `url`; Telegram echoes `secret_token` in a header."""
        self._call(
            "setWebhook",
            {"url": url, "secret_token": secret_token, "allowed_updates": ["message"]},
        )

    def get_me(self) -> dict[str, Any]:
        """The bot's own user (id, username): a cheap round trip proving the token works."""
        result = self._call("getMe")
        if not isinstance(result, dict):
            raise ProviderError("retry", "Telegram getMe: no user in the answer")
        return result

    def close(self) -> None:
        """Close the pool's kept-alive connections."""
        self.pool.clear()
