"""Thin tasks that deliver notifications and sweep up the ones left pending."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded

from celeryconfig import TASK_RETRY_POLICY
from core.db import session_scope
from core.services import broadcasts, deliveries
from core.services.dispatch import dispatch_now
from core.settings import get_settings
from worker.celery_app import app
from worker.live import send_live

# Errors worth another try: the database, Redis or a socket hiccuped.
TRANSIENT = (OSError, ConnectionError, TimeoutError, SoftTimeLimitExceeded)


@app.task(name="notifications.deliver_live", autoretry_for=TRANSIENT, **TASK_RETRY_POLICY)
def deliver_live(delivery_ids: list[str]) -> dict[str, int]:
    """Emit notifications to their users' sockets through the message queue."""
    lease = get_settings().DELIVERY_LEASE_SECONDS
    return deliveries.deliver(session_scope, delivery_ids, send_live, lease)


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
