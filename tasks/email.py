"""Thin task that sends a test email (`flask send-test-email`); deliveries are in notifications."""

from __future__ import annotations

from typing import Any

from celeryconfig import TASK_RETRY_POLICY
from core.services.deliveries import RetryLater
from tasks.notifications import TRANSIENT
from worker.adapters.email import send_sample
from worker.celery_app import app


@app.task(name="email.send_test", autoretry_for=(*TRANSIENT, RetryLater), **TASK_RETRY_POLICY)
def send_test_email(address: str, kind: str, locale: str) -> dict[str, Any]:
    """Send one template with sample data to `address`."""
    return send_sample(address, kind, locale)
