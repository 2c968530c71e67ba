"""The web worker and the cyclic garbage collector: small young passes, rare full ones, timed.

A process holding thousands of sockets has a large heap. Each full pass of CPython's collector
walks all of it while every socket waits (150-350 ms at 2,000 sockets), and young passes grew
to 20-140 ms: docs/BENCHMARKS.md, issue 15. gunicorn's `post_worker_init` calls `tune()` once
the worker has loaded the app.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from flask import Flask

from core import metrics
from core.settings import Settings

log = logging.getLogger(__name__)
# Passes timed but not yet handed to the metrics; past this (nothing flushing), the oldest go.
PENDING_PASSES = 4096


class PauseWatch:
    """Times every pass of the collector (a `gc.callbacks` hook) for `gc_pause_seconds`."""

    def __init__(self) -> None:
        self.pending: deque[tuple[int, float, int]] = deque(maxlen=PENDING_PASSES)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        """Note when a pass starts, and what it took when it stops."""
        # Runs inside the collector: no lock (this green thread may hold the metrics store's,
        # a pass can start at any allocation), no I/O, nothing that could switch green threads.
        if phase == "start":
            self._started = time.perf_counter()
        else:
            seconds = time.perf_counter() - self._started
            self.pending.append((info["generation"], seconds, info["collected"]))

    def drain(self) -> None:
        """Record the passes timed since the last drain (run before each metrics flush)."""
        while self.pending:
            generation, seconds, collected = self.pending.popleft()
            metrics.observe("gc_pause_seconds", seconds, generation=str(generation))
            if generation == 2:
                # Rare once tuned, and each one stalled every socket: worth a line.
                log.info(
                    "gc: full pass took %.0f ms, collected %d objects", seconds * 1000, collected
                )


def collect_on_a_clock(sleep: Callable[[float], Any], seconds: float) -> None:
    """Every `seconds`, collect the young generations; a full pass once the thresholds say so."""
    # CPython starts a young pass when allocations outnumber deallocations by the first
    # threshold. Here each emit allocates a socket's next wait and frees its last one, so the
    # count stays low while the youngest generation grows with every socket's pending wait and
    # packet: passes came seldom and found 20,000 objects (20-70 ms), the middle generation up to
    # 140 ms. On a clock each pass finds only what the last `seconds` left alive (1-3 ms).
    # Generations 0 and 1 together, so each survivor is examined once, then left to full passes.
    while True:
        sleep(seconds)
        gc.collect(1)
        # Each of these passes counts towards a full one, as CPython's own middle passes do.
        if gc.get_count()[2] > gc.get_threshold()[2]:
            gc.collect(2)


@lru_cache(maxsize=1)
def eventlet_socket_queue() -> type:
    """eventlet's Queue, with a `get` that waits without a timeout (engine.io's socket queues)."""
    from eventlet.queue import Queue

    class SocketQueue(Queue):  # type: ignore[misc]
        """A socket's queue of packets to send, whose blocking get schedules no hub timer."""

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            """Take the next packet, waiting for one as long as it takes."""
            # engine.io's writer waits on its socket's queue with a 45 s timeout (ping interval +
            # ping timeout) before every packet it sends. Under eventlet each such wait is a
            # Timeout, a hub Timer and the Timer's arguments, and the Timer stays in the hub's
            # heap after it is cancelled until half the heap is cancelled timers: ~10 objects
            # per emit that outlive young passes. The timeout only ever fires for a socket that
            # nothing is sent to for 45 s, while engine.io pings every 25 s and closes a socket
            # whose client stops answering (its service task checks them all), which puts None
            # in the queue and wakes this wait.
            return super().get(block, None)

    return SocketQueue


def tune(app: Flask) -> PauseWatch:
    """Apply the web worker's collector settings to this process, once its app is loaded."""
    settings: Settings = app.config["SETTINGS"]
    socketio = app.extensions["socketio"]
    if settings.ASYNC_MODE == "eventlet":
        # create_queue is engine.io's factory of its sockets' queues; it picks the async mode's.
        socketio.server.eio.create_queue = eventlet_socket_queue()
    # The third threshold is how many middle passes (here mostly the clock's) come before a
    # full one: rare, because a full pass finds next to nothing to free in this process (a
    # closed socket is freed by reference counting, docs/BENCHMARKS.md). The memory this costs
    # is the cycles among long-lived objects, kept until the next full pass instead of freed.
    gc.set_threshold(*settings.WEB_GC_THRESHOLDS)
    # The app, its libraries and their caches live as long as the process: frozen, no full pass
    # walks them again (~170,000 objects). Collected first, so no start-up garbage is kept.
    gc.collect()
    gc.freeze()
    watch = PauseWatch()
    gc.callbacks.append(watch)
    metrics.add_source(watch.drain)
    seconds = settings.WEB_GC_YOUNG_PASS_SECONDS
    if seconds:
        socketio.start_background_task(collect_on_a_clock, socketio.sleep, seconds)
    log.info(
        "gc: %d start-up objects frozen; thresholds %s; young passes %s",
        gc.get_freeze_count(),
        ",".join(map(str, gc.get_threshold())),
        f"every {seconds} s" if seconds else "by allocation counts",
    )
    return watch
