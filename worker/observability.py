"""Worker and beat hooks: structured logs with task and request ids, task metrics, beat ticks."""

from __future__ import annotations

import logging
import threading
import time
from contextvars import Token
from typing import Any

from celery.signals import (
    beat_init,
    before_task_publish,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

from core import logs, metrics, probes
from core.settings import get_settings

log = logging.getLogger(__name__)
# Beat publishes every sweep interval; writing its tick more often than this is wasted work.
TICK_EVERY_SECONDS = 1.0
_bindings: dict[str, list[tuple[Any, Token[Any]]]] = {}
_beat = {"running": False, "last": 0.0}
_lock = threading.Lock()


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    """Our format for worker and beat (connecting this stops Celery configuring its own)."""
    settings = get_settings()
    logs.configure(settings.LOG_FORMAT, settings.APP_ENV, settings.LOG_LEVEL)


@worker_init.connect
@worker_process_init.connect
def _activate_metrics(**_: Any) -> None:
    """Worker processes (the pool's children included) write their metrics to Redis."""
    metrics.activate()
    metrics.start_flusher()


@worker_process_shutdown.connect
def _flush_metrics(**_: Any) -> None:
    """A pool process about to exit writes what its flusher has not yet."""
    metrics.flush()


@task_prerun.connect
def _bind_ids(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Every log line of the task carries its id and the id of the request that enqueued it."""
    if task_id is None:
        return
    request_id = getattr(getattr(task, "request", None), "request_id", None)
    _bindings[task_id] = [
        (logs.task_id, logs.task_id.set(task_id)),
        (logs.request_id, logs.request_id.set(request_id)),
    ]


@task_postrun.connect
def _unbind(task_id: str | None = None, **_: Any) -> None:
    """Forget the task's ids (its metrics are written by the process's flusher)."""
    for var, token in reversed(_bindings.pop(task_id or "", [])):
        try:
            var.reset(token)
        except ValueError:  # another context: clearing is what matters
            var.set(None)


@task_failure.connect
def _count_failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    """Count a task that raised, by task and exception type."""
    name = getattr(sender, "name", "unknown")
    metrics.count("task_failures", task=name, exception=type(exception).__name__)


@task_retry.connect
def _count_retry(sender: Any = None, **_: Any) -> None:
    """Count a task retry, by task."""
    metrics.count("task_retries", task=getattr(sender, "name", "unknown"))


@beat_init.connect
def _beat_started(**_: Any) -> None:
    """Mark this process as beat, so its publishes count as ticks, and record the first."""
    _beat["running"] = True
    _tick()


@before_task_publish.connect
def _beat_publishes(**_: Any) -> None:
    """Each task beat sends proves it is alive: record the tick for /health?deep=1."""
    if _beat["running"]:
        _tick()


def _tick() -> None:
    """Record beat's tick in Redis, at most once a second; a failure only logs."""
    now = time.time()
    with _lock:
        if now - _beat["last"] < TICK_EVERY_SECONDS:
            return
        _beat["last"] = now
    try:
        probes.record_beat_tick(now)
    except Exception as exc:  # the publish itself goes on; health will show beat as stale
        log.warning("could not record beat's tick: %s", exc)
