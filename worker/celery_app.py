"""The Celery application of the worker, beat and flower processes."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

import worker.observability  # noqa: F401  (connects logs, task metrics and beat's ticks)
import worker.schedules  # noqa: F401  (connects beat's start-up catch-up of missed periods)
from core.services.dispatch import DELIVERY_TASKS, batches, set_dispatcher

app = Celery("admarket")
app.config_from_object("celeryconfig")


def enqueue_deliveries(channel: str, delivery_ids: list[str]) -> None:
    """Send delivery ids created inside the worker (sweeps, reminders) to their tasks."""
    for batch in batches(delivery_ids):
        app.send_task(DELIVERY_TASKS[channel], args=[batch])


set_dispatcher(enqueue_deliveries)


@worker_process_init.connect
def _reset_after_fork(**_: object) -> None:
    """Drop connections inherited from the parent: sockets must not be shared across a fork."""
    from core.db import get_engine

    get_engine().dispose(close=False)
