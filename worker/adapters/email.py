"""The email channel: render each claimed notification and send it, many at a time per process."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from typing import Any

from core import notification_types
from core.services import delivery_engine as engine
from core.services import emails, password_reset, unsubscribe
from core.services.deliveries import Claimed, PermanentFailure, RetryLater
from core.settings import Settings, get_settings
from worker.mailer import Mailer, OutgoingEmail, get_mailer


def outgoing(item: Claimed, settings: Settings) -> OutgoingEmail:
    """The email for one claimed delivery, from the notification's stored snapshot."""
    notification, user = item.notification, item.user
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


class EmailAdapter:
    """Sends through the mailer (SendGrid or the dev outbox) on a pool of send threads."""

    channel = "email"
    needs_link = False
    paced = True

    def __init__(self, mailer: Mailer, settings: Settings, pool: Executor) -> None:
        self.mailer = mailer
        self.settings = settings
        self.pool = pool

    def send(self, items: Sequence[Claimed]) -> Iterable[engine.Landed]:
        """Every email of the batch in flight at once, outcomes as they land."""
        return engine.concurrently(self.pool, self.send_one, items)

    def send_one(self, item: Claimed) -> engine.Outcome:
        """Render and send one email, reading the mailer's verdict."""
        user = item.user
        if user.email_undeliverable_at is not None:
            # Bounced since the notification was stored: nothing goes to the provider.
            reason = user.email_undeliverable_reason or "bounced"
            return engine.suppressed(f"address undeliverable: {reason}")
        try:
            answer: dict[str, Any] = self.mailer.send(outgoing(item, self.settings))
        except PermanentFailure as exc:
            return engine.failed(str(exc))
        except RetryLater as exc:
            return engine.retry(str(exc), not_before=exc.not_before)
        return engine.sent(answer.get("provider_message_id"))


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
