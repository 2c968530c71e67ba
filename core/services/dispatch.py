"""Hand delivery ids to the task queue, only after the transaction that wrote them commits."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from core import metrics
from core.db import on_commit

log = logging.getLogger(__name__)

# The Celery task that performs each channel's deliveries (names shared by web and worker).
# The task that delivers each channel (one engine, one adapter per channel: worker/delivery.py).
DELIVERY_TASKS = {
    "inbox": "notifications.deliver_live",
    "email": "notifications.deliver_email",
    "telegram": "notifications.deliver_telegram",
    "vk": "notifications.deliver_vk",
}
# Bounds one task message's size and how much one task redoes after a crash.
BATCH_SIZE = 200

# (channel, delivery ids) -> None; set by the web and worker processes at start-up.
Dispatcher = Callable[[str, list[str]], None]
_dispatcher: Dispatcher | None = None


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    """Install the function that enqueues deliveries (None leaves them to the sweeper)."""
    global _dispatcher
    _dispatcher = dispatcher


def dispatch_now(channel: str, delivery_ids: list[str]) -> None:
    """Enqueue deliveries at once; failures are logged, since the sweeper re-sends pending rows."""
    if not delivery_ids or _dispatcher is None:
        return
    try:
        _dispatcher(channel, delivery_ids)
    except Exception as exc:  # the broker may be down; the row stays pending
        log.warning("could not enqueue %d %s deliveries: %s", len(delivery_ids), channel, exc)


def batches(delivery_ids: list[str]) -> list[list[str]]:
    """Split delivery ids into task-sized batches."""
    return [delivery_ids[i : i + BATCH_SIZE] for i in range(0, len(delivery_ids), BATCH_SIZE)]


def dispatch_after_commit(session: Session, channel: str, delivery_id: str) -> None:
    """Queue one delivery id to be enqueued once `session` commits."""
    pending: dict[str, list[str]] | None = session.info.get("dispatch")
    if pending is None:
        pending = session.info["dispatch"] = {}
        on_commit(session, lambda: _flush(pending))
    pending.setdefault(channel, []).append(delivery_id)


def _flush(pending: dict[str, list[str]]) -> None:
    """Enqueue everything one transaction produced, channel by channel."""
    # Counted only: the web process writes its counters once a second (web/socket_guard.py),
    # a worker after each task, a command at exit; not a Redis round trip per API call.
    for channel, ids in pending.items():
        metrics.count("notifications_created", len(ids), channel=channel)
        dispatch_now(channel, ids)
