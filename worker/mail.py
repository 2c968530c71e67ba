"""Email delivery: render claimed notifications and send them, many at a time per process."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from core import metrics, notification_types
from core.db import session_scope
from core.services import emails, password_reset, unsubscribe
from core.services.bulk_delivery import BatchResult, deliver_concurrently
from core.services.deliveries import Claimed, PermanentFailure, Suppressed
from core.settings import Settings, get_settings
from worker.mailer import Mailer, OutgoingEmail, get_mailer
from worker.metering import MeteredMailer


def outgoing(item: Claimed, settings: Settings) -> OutgoingEmail:
    """The email for one claimed delivery, from the notification's stored snapshot."""
    notification, user = item.notification, item.user
    if user.email_undeliverable_at is not None:
        # Bounced since the notification was stored: nothing goes to the provider.
        raise Suppressed(f"address undeliverable: {user.email_undeliverable_reason or 'bounced'}")
    payload = notification.payload or {}
    if notification.type == "password_reset":
        # Signed now, for the password the user has now: never stored anywhere.
        payload = {
            **payload,
            "reset_token": password_reset.sign(settings, user),
            "valid_minutes": settings.PASSWORD_RESET_TTL_SECONDS // 60,
        }
    kind = notification_types.TYPES.get(notification.type)
    headers: dict[str, str] = {}
    unsubscribe_url = None
    if kind is not None and not kind.required:
        token = unsubscribe.sign(settings, user.id, kind.name)
        unsubscribe_url = unsubscribe.link(settings, token)
        headers = unsubscribe.headers(settings, token)
    try:
        rendered = emails.render(
            notification.type,
            user.locale,
            payload,
            recipient_name=user.name,
            frontend_url=settings.FRONTEND_URL,
            unsubscribe_url=unsubscribe_url,
        )
    except (ValueError, LookupError) as exc:
        # A snapshot the template cannot use will not change on a retry.
        raise PermanentFailure(f"cannot render {notification.type}: {exc}") from None
    return OutgoingEmail(
        to_email=user.email,
        to_name=user.name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        key=notification.id,
        # Event Webhook posts come back with these, so they can find the delivery row.
        custom_args={"notification_id": notification.id, "delivery_id": item.delivery_id},
        headers=headers,
    )


def make_sender(mailer: Mailer, settings: Settings) -> Any:
    """The per-delivery send function the batch service runs on its thread pool."""

    def send(item: Claimed) -> dict[str, Any]:
        try:
            email = outgoing(item, settings)
        except Suppressed:
            metrics.count("deliveries", channel="email", outcome="suppressed")
            raise
        return mailer.send(email)

    return send


@lru_cache(maxsize=1)
def pool() -> ThreadPoolExecutor:
    """The process's send threads, created after the worker forks and reused by every task."""
    return ThreadPoolExecutor(get_settings().EMAIL_CONCURRENCY, thread_name_prefix="email")


def deliver(delivery_ids: Sequence[str]) -> BatchResult:
    """Send a batch of email deliveries with the configured mailer and record each outcome."""
    settings = get_settings()
    return deliver_concurrently(
        session_scope,
        delivery_ids,
        make_sender(MeteredMailer(get_mailer()), settings),
        pool(),
        lease_seconds=settings.DELIVERY_LEASE_SECONDS,
        max_attempts=settings.EMAIL_MAX_ATTEMPTS,
    )


def send_sample(address: str, kind: str, locale: str) -> dict[str, Any]:
    """Send one template rendered with sample data to `address` (the test-email command)."""
    rendered = emails.render_sample(kind, locale, get_settings().FRONTEND_URL)
    email = OutgoingEmail(
        to_email=address,
        to_name="",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        key=f"test-{kind}-{locale}",
        custom_args={"test_email": kind},
    )
    return get_mailer().send(email)
