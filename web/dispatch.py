"""The web tier's Celery client: enqueue deliveries after commit, never stall a request."""

from __future__ import annotations

import logging
import time

from celery import Celery

from core.services.dispatch import DELIVERY_TASKS, batches

log = logging.getLogger(__name__)
# After a failed publish, requests skip the broker this long; the sweeper covers the gap.
BREAKER_SECONDS = 5.0


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
                self.celery.send_task(DELIVERY_TASKS[channel], args=[batch], retry=False)
        except Exception:
            self.open_until = time.monotonic() + BREAKER_SECONDS
            raise
