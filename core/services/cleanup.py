"""Delete notifications past their retention, in short batches so no table is locked for long."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from core.models import Delivery, Notification, SeenEmailEvent
from core.services.jobs.base import JobContext, Scope

log = logging.getLogger(__name__)


def delete_older_than(scope: Scope, cutoff: datetime, batch_size: int) -> dict[str, int]:
    """Delete notifications created before `cutoff`, and their deliveries, batch by batch.

    Each batch is its own transaction, oldest rows first through the created_at index: locks
    last one batch, readers and writers get in between, and a crash loses at most one batch.
    """
    totals = {"notifications": 0, "deliveries": 0, "batches": 0}
    while True:
        with scope() as session:
            ids = session.scalars(
                select(Notification.id)
                .where(Notification.created_at < cutoff)
                .order_by(Notification.created_at)
                .limit(batch_size)
            ).all()
            if not ids:
                break
            # Explicitly, not by ON DELETE CASCADE: the count is reported, and SQLite files
            # created with foreign keys off would otherwise keep orphans.
            gone = session.execute(delete(Delivery).where(Delivery.notification_id.in_(ids)))
            totals["deliveries"] += int(gone.rowcount or 0)
            gone = session.execute(delete(Notification).where(Notification.id.in_(ids)))
            totals["notifications"] += int(gone.rowcount or 0)
        totals["batches"] += 1
        if len(ids) < batch_size:
            break
    return totals


def forget_email_events(scope: Scope, cutoff: datetime) -> int:
    """Forget the ids of provider events seen before `cutoff`; SendGrid re-posts for 72 h only."""
    with scope() as session:
        gone = session.execute(delete(SeenEmailEvent).where(SeenEmailEvent.created_at < cutoff))
        return int(gone.rowcount or 0)


def run(scope: Scope, ctx: JobContext) -> dict[str, Any]:
    """The job: delete what is older than NOTIFICATION_RETENTION_DAYS at the time of the run."""
    cutoff = ctx.now - timedelta(days=ctx.settings.NOTIFICATION_RETENTION_DAYS)
    totals = delete_older_than(scope, cutoff, ctx.settings.CLEANUP_BATCH_SIZE)
    totals["email_events"] = forget_email_events(scope, cutoff)
    log.info("cleanup: %s removed before %s", totals, cutoff.isoformat())
    return {**totals, "cutoff": cutoff.isoformat()}
