"""Thin tasks that send emails: notification deliveries in batches, and test emails."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from celeryconfig import TASK_RETRY_POLICY
from core.services.deliveries import RetryLater
from tasks.notifications import TRANSIENT
from worker import mail
from worker.celery_app import app

log = logging.getLogger(__name__)


@app.task(
    name="notifications.deliver_email",
    bind=True,
    autoretry_for=TRANSIENT,
    **TASK_RETRY_POLICY,
)
def deliver_email(self: Task, delivery_ids: list[str]) -> dict[str, int]:
    """Send a batch of email deliveries; retry only the ones a transient error held back."""
    result = mail.deliver(delivery_ids)
    if result.retry_ids:
        if self.request.retries >= self.max_retries:
            # They are pending again: the sweeper re-sends them until their attempts run out.
            log.warning("retries exhausted; %d emails left to the sweeper", len(result.retry_ids))
            return result.counts()
        countdown = result.countdown(
            self.request.retries,
            TASK_RETRY_POLICY["retry_backoff"],
            TASK_RETRY_POLICY["retry_backoff_max"],
        )
        raise self.retry(args=[result.retry_ids], countdown=countdown)
    return result.counts()


@app.task(name="email.send_test", autoretry_for=(*TRANSIENT, RetryLater), **TASK_RETRY_POLICY)
def send_test_email(address: str, kind: str, locale: str) -> dict[str, Any]:
    """Send one template with sample data to `address` (`flask send-test-email`)."""
    return mail.send_sample(address, kind, locale)
