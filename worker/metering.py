"""Metrics and log lines of the emit and the mailer; the engine meters the outcomes themselves."""

from __future__ import annotations

import logging
import re
from typing import Any

from core import logs, metrics
from core.models.base import utcnow
from core.services.deliveries import PermanentFailure, RetryLater
from worker.mailer import Mailer, OutgoingEmail

log = logging.getLogger(__name__)
STATUS_IN_ERROR = re.compile(r"^SendGrid (\d{3})")


def record_emit(notification: Any, user_id: str) -> None:
    """After an emit: its commit-to-emit latency, its count, and the last line of its trail."""
    seconds = (utcnow() - notification.created_at).total_seconds()
    metrics.observe("commit_to_emit_seconds", seconds)
    log.info(
        "emitted %s seq %d to user %s, %.0f ms after commit",
        notification.type,
        notification.seq,
        user_id,
        seconds * 1000,
        extra={"notification_id": notification.id},
    )


def record_emit_error(notification: Any, exc: BaseException) -> None:
    """A failed emit: logged; the engine records and meters the retry."""
    log.warning("emit failed, will retry: %s", exc, extra={"notification_id": notification.id})


def provider_status(exc: Exception) -> str:
    """A short label for a provider's refusal: its HTTP status, or what kind of failure."""
    match = STATUS_IN_ERROR.match(str(exc))
    if match:
        return match.group(1)
    if "429 earlier" in str(exc):
        return "429"
    if "unreachable" in str(exc):
        return "network"
    return "outbox_error" if "outbox" in str(exc) else "error"


class MeteredMailer:
    """Wraps the mailer: counts each answer and logs it with the task's and notification's ids."""

    def __init__(self, inner: Mailer) -> None:
        self.inner = inner
        # Sends run on a thread pool, which does not inherit the task's context: keep its ids.
        self.ids = {"task_id": logs.task_id.get(), "request_id": logs.request_id.get()}

    def send(self, email: OutgoingEmail) -> dict[str, Any]:
        """Send through the wrapped mailer, recording the outcome whatever it is."""
        with logs.bound(**self.ids, notification_id=email.custom_args.get("notification_id")):
            try:
                result = self.inner.send(email)
            except (PermanentFailure, RetryLater) as exc:
                outcome = "failed" if isinstance(exc, PermanentFailure) else "retry"
                metrics.count("emails", provider_status=provider_status(exc))
                log.warning("email to %s not sent (%s): %s", email.to_email, outcome, exc)
                raise
            message_id = str(result.get("provider_message_id") or "")
            status = "outbox" if message_id.startswith("outbox:") else "202"
            metrics.count("emails", provider_status=status)
            log.info("email to %s sent (%s, %s)", email.to_email, status, message_id)
            return result
