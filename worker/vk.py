"""The only module that talks to the VK API: community messages (messages.send) and a health check.

Plain HTTPS over a keep-alive urllib3 pool, like worker/mailer.py. VK answers most errors with
HTTP 200 and {"error": {"error_code", "error_msg"}}; each becomes a ProviderError whose kind
tells the delivery engine what to do. The token travels in the form body, never in a URL, and is
redacted from every error text anyway.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import urllib3

from worker.provider_errors import ProviderError

# Network failures worth another try: refused or reset connections, timeouts, bad responses.
NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)
REDACTED = "<redacted>"
# error_code -> seconds to wait before the next try (None: the engine's own backoff).
# 1 "unknown error, try again later"; 6 too many requests per second (a second frees a slot);
# 9 flood control (too many identical or too many messages: give it longer); 10 internal error.
RETRY_CODES: dict[int, float | None] = {1: None, 6: 1.0, 9: 5.0, 10: None}
# 901: the user never allowed the community to message them (or took it back);
# 902: their privacy settings forbid it. Only the user can change that: unlink.
UNLINK_CODES = frozenset({901, 902})
# 5: the token is invalid or revoked; 15: access denied; 27/28: the group or app token is not
# accepted for this method. No send can succeed until an operator replaces the token.
AUTH_CODES = frozenset({5, 15, 27, 28})
INT31_MASK = 0x7FFFFFFF


def random_id_for(delivery_id: str) -> int:
    """A stable positive int32 for a delivery, so VK drops a resend of the same message."""
    value = int.from_bytes(hashlib.sha256(delivery_id.encode()).digest()[:4], "big") & INT31_MASK
    # 0 means "no deduplication" to VK.
    return value or 1


def classify_error(error: Any) -> ProviderError:
    """Turn VK's {"error_code", "error_msg"} object into a ProviderError (see SPEC.md)."""
    code = error.get("error_code") if isinstance(error, dict) else None
    message = error.get("error_msg") if isinstance(error, dict) else None
    detail = f"VK error {code}: {message or '(no message)'}"
    if code in RETRY_CODES:
        return ProviderError("retry", detail, retry_after=RETRY_CODES[code])
    if code in UNLINK_CODES:
        return ProviderError("unlink", detail)
    if code in AUTH_CODES:
        return ProviderError("auth", detail)
    # 100 (bad parameters), 914 (message too long) and the rest: this message never goes out.
    return ProviderError("failed", detail)


class VkCommunity:
    """One community's VK API calls over a shared keep-alive pool; safe from many threads."""

    def __init__(
        self, token: str, api_base: str, version: str, timeout: float, connections: int = 32
    ) -> None:
        if not token:
            raise ValueError("a VK community token is required")
        self._token = token
        self.api_base = api_base.rstrip("/")
        self.version = version
        # Only a failed connect is retried here: a POST that may have reached VK is the
        # engine's call to repeat (random_id makes that safe for messages.send).
        self.pool = urllib3.PoolManager(
            maxsize=connections,
            timeout=urllib3.Timeout(total=timeout),
            retries=urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0),
        )

    def __repr__(self) -> str:
        """Name the API base and version, never the token."""
        return f"VkCommunity(api_base={self.api_base!r}, version={self.version!r})"

    def redact(self, text: str) -> str:
        """`text` with the access token replaced, for anything that may reach a log."""
        return text.replace(self._token, REDACTED)

    def _call(self, method: str, params: dict[str, str]) -> Any:
        """POST `params` as a form to `method`; the answer's `response`, or a ProviderError."""
        fields = {**params, "access_token": self._token, "v": self.version}
        try:
            response = self.pool.request(
                "POST",
                f"{self.api_base}/method/{method}",
                fields=fields,
                encode_multipart=False,
                headers={"Accept": "application/json"},
            )
        except NETWORK_ERRORS as exc:
            detail = self.redact(f"VK {method} unreachable: {type(exc).__name__}: {exc}")
            raise ProviderError("retry", detail) from None
        raw = response.data or b""
        if not 200 <= response.status < 300:
            text = raw[:300].decode("utf-8", "replace").strip()
            detail = self.redact(f"VK {method} HTTP {response.status}: {text}")
            # 5xx and 429 pass; any other HTTP refusal (VK answers its own errors with 200)
            # means this request cannot work as it is.
            kind = "retry" if response.status >= 500 or response.status == 429 else "failed"
            raise ProviderError(kind, detail)
        try:
            answer: Any = json.loads(raw)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and "error" in answer:
            error = classify_error(answer["error"])
            raise ProviderError(error.kind, self.redact(error.detail), error.retry_after)
        if not isinstance(answer, dict) or "response" not in answer:
            text = self.redact(raw[:300].decode("utf-8", "replace"))
            raise ProviderError("retry", f"VK {method}: unexpected answer: {text}")
        return answer["response"]

    def send_message(self, peer_id: str, text: str, random_id: int) -> str:
        """Send `text` to a peer as the community; VK's message id (the same for a repeat)."""
        result = self._call(
            "messages.send",
            {
                "peer_id": str(peer_id),
                "random_id": str(random_id),
                "message": text,
                # The notification's own link is in the text; a preview card would bury it.
                "dont_parse_links": "1",
            },
        )
        if isinstance(result, bool) or not isinstance(result, int | str):
            raise ProviderError("retry", f"VK messages.send: unexpected response {result!r}")
        return str(result)

    def check(self) -> dict[str, Any]:
        """The community itself (groups.getById): a round trip proving the token works."""
        result = self._call("groups.getById", {})
        # API 5.194+ wraps the list as {"groups": [...], "profiles": [...]}.
        groups = result.get("groups") if isinstance(result, dict) else result
        if not isinstance(groups, list) or not groups or not isinstance(groups[0], dict):
            raise ProviderError("retry", f"VK groups.getById: unexpected response {result!r}")
        return groups[0]

    def close(self) -> None:
        """Close the pool's kept-alive connections."""
        self.pool.clear()
