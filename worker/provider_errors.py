"""The one error type messenger adapters raise, saying what the delivery engine should do next."""

from __future__ import annotations

from typing import Literal

# retry: try again later (after retry_after seconds when the provider said so);
# failed: this message can never be sent as it is; unlink: the chat or user is gone for good,
# forget the linked account; auth: our token is refused, every send will fail until an
# operator fixes it, so keep the deliveries pending and say so in health.
ProviderErrorKind = Literal["retry", "failed", "unlink", "auth"]
KINDS: frozenset[str] = frozenset({"retry", "failed", "unlink", "auth"})


class ProviderError(Exception):
    """A provider's refusal or an unreachable provider, classified by what to do about it."""

    def __init__(
        self, kind: ProviderErrorKind, detail: str, retry_after: float | None = None
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown ProviderError kind {kind!r}")
        super().__init__(kind, detail, retry_after)
        self.kind: ProviderErrorKind = kind
        self.detail = detail
        self.retry_after = retry_after

    def __str__(self) -> str:
        """The detail, prefixed by the kind, as it goes into logs and the delivery's error."""
        wait = f" (retry after {self.retry_after:g} s)" if self.retry_after is not None else ""
        return f"{self.kind}: {self.detail}{wait}"

    def __reduce__(self) -> tuple[type[ProviderError], tuple[str, str, float | None]]:
        """Pickle by the constructor's arguments, so the error crosses Celery's result backend."""
        return (type(self), (self.kind, self.detail, self.retry_after))
