"""The web tier's delivery dispatcher: enqueue deliveries after commit, never stall a request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery

from core import logs
from core.services.dispatch import DELIVERY_TASKS, batches
from web.celery_client import celery_client

log = logging.getLogger(__name__)
# After a failed publish, requests skip the broker this long; the sweeper covers the gap.
BREAKER_SECONDS = 5.0
# While busy, publishes are at least this far apart, so that the commits made meanwhile share a
# task per channel: each task costs ~1.5 ms of CPU across this process and the worker's
# consumer and pool process, whatever it carries (docs/BENCHMARKS.md, issue 15). A publish
# after a quiet spell goes out at once.
LINGER_SECONDS = 0.02
# At most this many request ids ride along in one task's headers (for the logs only).
MAX_REQUEST_IDS = 20

Spawn = Callable[[Callable[[], None]], Any]
Sleep = Callable[[float], Any]


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
    """Publishes delivery tasks from a background green thread, coalescing concurrent commits.

    A request only appends its delivery ids and, if no flush is under way, starts one; the
    flush runs as soon as the request yields and publishes everything committed meanwhile in
    one task per channel (up to the batch size). An idle server sends one task per request at
    once; a busy one publishes at most every LINGER_SECONDS, fewer and larger tasks, so the
    per-task cost in this process and in the workers is shared (docs/BENCHMARKS.md, B4). A
    crash between commit and publish loses nothing: the rows are pending and the sweeper
    re-sends them, as when Redis is down.
    """

    def __init__(
        self, spawn: Spawn | None = None, sleep: Sleep = time.sleep, celery: Celery | None = None
    ) -> None:
        self.celery = celery or celery_client()
        self.open_until = 0.0
        self.spawn: Spawn = spawn or _thread
        self.sleep = sleep
        self.published_at = float("-inf")
        self.lock = threading.Lock()
        self.pending: dict[str, list[str]] = {}
        self.request_ids: list[str] = []
        self.flushing = False

    def enqueue(self, channel: str, delivery_ids: list[str]) -> None:
        """Queue the deliveries for the next publish, or raise while the breaker is open."""
        if time.monotonic() < self.open_until:
            raise ConnectionError("broker unavailable recently; left to the sweeper")
        request_id = logs.request_id.get()
        with self.lock:
            self.pending.setdefault(channel, []).extend(delivery_ids)
            if request_id and len(self.request_ids) < MAX_REQUEST_IDS:
                self.request_ids.append(request_id)
            if self.flushing:
                return
            self.flushing = True
        try:
            self.spawn(self.flush)
        except Exception:
            with self.lock:
                self.flushing = False
            raise

    def send(self, task: str, args: list[Any]) -> None:
        """Send one task now; a failure is logged, and the sweeper finds the work left undone."""
        if time.monotonic() < self.open_until:
            log.warning("broker unavailable recently; %s left to the sweeper", task)
            return
        try:
            sent = self.celery.send_task(
                task, args=args, retry=False, ignore_result=True, result_cls=SentTask
            )
            log.info("enqueued %s", task, extra={"task_id": sent.id})
        except Exception as exc:
            self.open_until = time.monotonic() + BREAKER_SECONDS
            log.warning("could not enqueue %s: %s", task, exc)

    def flush(self) -> None:
        """Publish until nothing is pending; a failure leaves the rest to the sweeper."""
        while True:
            wait = self.published_at + LINGER_SECONDS - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            with self.lock:
                pending, self.pending = self.pending, {}
                request_ids, self.request_ids = self.request_ids, []
                if not pending:
                    self.flushing = False
                    return
            self.published_at = time.monotonic()
            # The request ids go into the task headers (web/request_ids.py), so that
            # `grep <request id>` still finds the worker's lines for a shared task.
            with logs.bound(request_id=",".join(dict.fromkeys(request_ids)) or None):
                for channel, ids in pending.items():
                    self._publish(channel, ids)

    def _publish(self, channel: str, delivery_ids: list[str]) -> None:
        """Send one channel's deliveries as tasks; log instead of raising (nobody to raise to)."""
        if time.monotonic() < self.open_until:
            log.warning("broker unavailable recently; %d %s deliveries left to the sweeper",
                        len(delivery_ids), channel)  # fmt: skip
            return
        try:
            for batch in batches(delivery_ids):
                sent = self.celery.send_task(
                    DELIVERY_TASKS[channel],
                    args=[batch],
                    retry=False,
                    ignore_result=True,
                    result_cls=SentTask,
                )
                log.info(
                    "enqueued %s for %d deliveries",
                    DELIVERY_TASKS[channel],
                    len(batch),
                    extra={"task_id": sent.id},
                )
        except Exception as exc:
            self.open_until = time.monotonic() + BREAKER_SECONDS
            log.warning("could not enqueue %d %s deliveries: %s", len(delivery_ids), channel, exc)


def _thread(target: Callable[[], None]) -> threading.Thread:
    """Run `target` on a daemon thread (green under a monkey-patched server)."""
    thread = threading.Thread(target=target, name="broker-flush", daemon=True)
    thread.start()
    return thread
