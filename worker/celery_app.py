"""The Celery application of the worker, beat and flower processes."""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from celery import Celery
from celery.signals import worker_before_create_process, worker_process_init

import worker.observability  # noqa: F401  (connects logs, task metrics and beat's ticks)
import worker.schedules  # noqa: F401  (connects beat's start-up catch-up of missed periods)
from core.services.dispatch import DELIVERY_TASKS, batches, set_dispatcher
from worker import redis_transport

log = logging.getLogger(__name__)
# The queues whose tasks render emails: a worker consuming one warms the templates up.
EMAIL_QUEUES = frozenset({"email"})


def create_app() -> Celery:
    """The Celery app, on our Redis transport, with the worker's own dispatcher installed."""
    # kombu's Redis transport minus a client built per command (worker/redis_transport.py), for
    # the worker, beat and Flower, which all load this app.
    redis_transport.install()
    celery = Celery("admarket")
    celery.config_from_object("celeryconfig")

    def enqueue_deliveries(channel: str, delivery_ids: list[str]) -> None:
        """Send delivery ids created inside the worker (sweeps, reminders) to their tasks."""
        for batch in batches(delivery_ids):
            celery.send_task(DELIVERY_TASKS[channel], args=[batch])

    set_dispatcher(enqueue_deliveries)
    return celery


# `celery -A worker.celery_app` and the task modules look the app up here.
app = create_app()


@worker_before_create_process.connect
@lru_cache(maxsize=1)  # once: the signal comes again before each child the pool replaces
def _warm_up_emails(**_: object) -> None:
    """Compile the email templates and catalogues once, before the pool forks its children."""
    # Not at worker_init: logging is configured after it, and this line would be lost.
    if EMAIL_QUEUES.isdisjoint(app.amqp.queues.consume_from):
        return  # the realtime worker renders no email: spare it the ~180 ms
    from core.services import emails
    from core.settings import get_settings

    started = time.perf_counter()
    count = emails.warm_up(get_settings().FRONTEND_URL)
    elapsed_ms = (time.perf_counter() - started) * 1000
    log.info("email templates warm: %d rendered in %.0f ms", count, elapsed_ms)


@worker_process_init.connect
def _reset_after_fork(**_: object) -> None:
    """Drop connections inherited from the parent: sockets must not be shared across a fork."""
    from core.db import get_engine

    get_engine().dispose(close=False)
