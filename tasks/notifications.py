"""Thin tasks that deliver notifications, one per channel, and sweep up the ones left pending."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from celeryconfig import TASK_RETRY_POLICY
from core.db import session_scope
from core.services import broadcasts, deliveries
from core.services.dispatch import DELIVERY_TASKS, dispatch_now
from core.settings import get_settings
from worker import delivery
from worker.celery_app import app

log = logging.getLogger(__name__)
# Errors worth another try: the database, Redis or a socket hiccuped.
TRANSIENT = (OSError, ConnectionError, TimeoutError, SoftTimeLimitExceeded)


def run_batch(task: Task, channel: str, delivery_ids: list[str]) -> dict[str, int]:
    """Deliver a batch; retry only the deliveries a transient error held back (one policy)."""
    result = delivery.deliver(channel, delivery_ids)
    if not result.retry_ids:
        return result.counts()
    if task.request.retries >= task.max_retries:
        # They are pending again: the sweeper re-sends them until their attempts run out.
        log.warning(
            "retries exhausted; %d %s deliveries left to the sweeper",
            len(result.retry_ids),
            channel,
        )
        return result.counts()
    countdown = result.countdown(
        task.request.retries,
        TASK_RETRY_POLICY["retry_backoff"],
        TASK_RETRY_POLICY["retry_backoff_max"],
    )
    raise task.retry(args=[result.retry_ids], countdown=countdown)


def _delivery_task(channel: str) -> Any:
    """The task that delivers a channel's batches, named as DELIVERY_TASKS says."""

    @app.task(name=DELIVERY_TASKS[channel], bind=True, autoretry_for=TRANSIENT, **TASK_RETRY_POLICY)
    def deliver_batch(self: Task, delivery_ids: list[str]) -> dict[str, int]:
        return run_batch(self, channel, delivery_ids)

    deliver_batch.__doc__ = f"Deliver a batch of {channel} deliveries."
    return deliver_batch


deliver_live = _delivery_task("inbox")
deliver_email = _delivery_task("email")
deliver_telegram = _delivery_task("telegram")
deliver_vk = _delivery_task("vk")


@app.task(name="notifications.sweep")
def sweep() -> dict[str, int]:
    """Re-enqueue deliveries that nobody is working on (lost enqueue, crashed worker)."""
    settings = get_settings()
    with session_scope() as session:
        due = deliveries.due_for_sweep(
            session,
            grace_seconds=settings.SWEEP_GRACE_SECONDS,
            lease_seconds=settings.DELIVERY_LEASE_SECONDS,
        )
        # Broadcasts whose task was lost (Redis down at the request) or whose worker died.
        stalled = broadcasts.stalled(
            session, settings.SWEEP_GRACE_SECONDS, settings.DELIVERY_LEASE_SECONDS
        )
    for channel, ids in due.items():
        dispatch_now(channel, ids)
    for broadcast_id in stalled:
        app.send_task("broadcasts.fan_out", args=[broadcast_id])
    return {**{channel: len(ids) for channel, ids in due.items()}, "broadcasts": len(stalled)}
