"""The web tier's Celery client: enqueue deliveries after commit, never stall a request."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery

from core.services.dispatch import DELIVERY_TASKS, batches

log = logging.getLogger(__name__)
# After a failed publish, requests skip the broker this long; the sweeper covers the gap.
BREAKER_SECONDS = 5.0


# Celery keeps its result backend per thread, so under eventlet or gevent every request's green
# thread built a new one for the AsyncResult that send_task returns (and, unless results are
# ignored, for the publish): an entry-points scan from disk, ~12% of the web process's CPU on the
# API path (docs/BENCHMARKS.md, B4). Results are never stored, so nothing here needs one.
class SentTask:
    """What `send_task` hands back here: the task id, without touching a result backend."""

    def __init__(self, task_id: str, **_: Any) -> None:
        self.id = task_id
        self.ignored = True


class BrokerClient:
    """Sends delivery tasks by name, with a circuit breaker for when Redis is down."""

    def __init__(self) -> None:
        self.celery = Celery("admarket-web")
        self.celery.config_from_object("celeryconfig")
        self.open_until = 0.0

    def enqueue(self, channel: str, delivery_ids: list[str]) -> None:
        """Publish the deliveries' tasks, or raise (and open the breaker) if the broker fails."""
        if time.monotonic() < self.open_until:
            raise ConnectionError("broker unavailable recently; left to the sweeper")
        try:
            for batch in batches(delivery_ids):
                sent = self.celery.send_task(
                    DELIVERY_TASKS[channel],
                    args=[batch],
                    retry=False,
                    ignore_result=True,
                    result_cls=SentTask,
                )
                # With the request id bound, this line links the API call to the worker's task.
                log.info(
                    "enqueued %s for %d deliveries",
                    DELIVERY_TASKS[channel],
                    len(batch),
                    extra={"task_id": sent.id},
                )
        except Exception:
            self.open_until = time.monotonic() + BREAKER_SECONDS
            raise
