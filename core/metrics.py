"""Platform-wide counters and histograms kept in Redis, so that every process adds to one total.

Why Redis and not prometheus_client's multiprocess mode: the counters are written by Celery
prefork children that come and go, on worker machines other than the web's, while /metrics is
served by the web tier. Multiprocess mode shares files in one directory of one machine, so each
worker host would need its own scrape endpoint and careful cleanup of dead children's files.
Redis is already shared by every process; HINCRBY is atomic; a counter survives the process
that wrote it. Each process buffers its increments and writes them in one pipeline once a
second: the web in its socket sweep (web/socket_guard.py), a worker process from a flusher
thread (a write after every task was a fifth of a live task's CPU). If Redis is away the buffer
is kept (its size is bounded by the number of distinct series) and written once Redis answers
again.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import redis

from core.settings import get_settings

log = logging.getLogger(__name__)
COUNTERS_KEY = "metrics:counters"
HISTOGRAMS_KEY = "metrics:histograms"
# How often a worker process's flusher thread writes its buffer.
FLUSH_EVERY_SECONDS = 1.0
# After a failed write, skip Redis this long: a request must never wait on metrics.
BREAKER_SECONDS = 5.0
# Commit-to-emit latency, in seconds: most land under 100 ms, the sweeper's re-sends at ~10 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Garbage-collector pauses, in seconds: young passes take well under a millisecond, a full pass
# over a web process holding 2,000 sockets 100-300 ms (docs/BENCHMARKS.md, issue 15).
GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Family:
    """One metric as Prometheus shows it: name, help text, label names; a histogram's buckets."""

    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = LATENCY_BUCKETS


_COUNTER_FAMILIES = (
    Family("notifications_created", "Notification deliveries committed, by channel", ("channel",)),
    Family(
        "deliveries",
        "Delivery attempts by channel and outcome (sent, failed, retry)",
        ("channel", "outcome"),
    ),
    Family(
        "emails",
        "Emails handed to the provider, by its answer (202, 429, 5xx, network, outbox)",
        ("provider_status",),
    ),
    Family(
        "task_failures", "Celery tasks that raised, by task and exception", ("task", "exception")
    ),
    Family("task_retries", "Celery task retries, by task", ("task",)),
    Family("rate_limited", "API calls refused with 429, by route", ("endpoint",)),
    Family(
        "socket_refusals",
        "Socket.IO handshakes refused by a limit (rate_limited, too_many_connections)",
        ("reason",),
    ),
    Family(
        "socket_disconnects",
        "Sockets cut off by a limit (event_budget, slow_consumer)",
        ("reason",),
    ),
    Family("socket_unknown_events", "Socket.IO events no handler knows, ignored", ()),
    Family("overloaded", "API calls refused with 503 overloaded before any work", ()),
    Family("unavailable", "API calls answered 503 unavailable, by what was down", ("part",)),
)
COUNTERS = {f.name: f for f in _COUNTER_FAMILIES}
HISTOGRAMS = {
    "commit_to_emit_seconds": Family(
        "commit_to_emit_seconds", "From a notification's commit to its Socket.IO emit", ()
    ),
    "gc_pause_seconds": Family(
        "gc_pause_seconds",
        "Passes of the web processes' cyclic garbage collector, by generation (2: full)",
        ("generation",),
        GC_PAUSE_BUCKETS,
    ),
}


def _field(name: str, labels: Mapping[str, str], bucket: str | None = None) -> str:
    """A Redis hash field: the name, then label=value pairs (commas and '=' cannot appear)."""
    pairs = [f"{k}={str(v).replace(',', '_').replace('=', '_')}" for k, v in sorted(labels.items())]
    if bucket is not None:
        pairs.append(f"le={bucket}")
    return f"{name}|{','.join(pairs)}"


def parse_field(field: str) -> tuple[str, dict[str, str]]:
    """The metric name and labels of a hash field written by `_field`."""
    name, _, rest = field.partition("|")
    labels = dict(pair.split("=", 1) for pair in rest.split(",") if pair)
    return name, labels


class MetricsStore:
    """Buffers increments in this process and adds them to Redis hashes on flush()."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._counts: dict[str, float] = defaultdict(float)
        self._hists: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._skip_until = 0.0

    def count(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add to a counter (written on the next flush)."""
        if amount:
            with self._lock:
                self._counts[_field(name, labels)] += amount

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """Record one histogram observation (per-bucket counts; cumulated when read)."""
        bounds = HISTOGRAMS[name].buckets if name in HISTOGRAMS else LATENCY_BUCKETS
        bucket = next((str(b) for b in bounds if seconds <= b), "+Inf")
        with self._lock:
            self._hists[_field(name, labels, bucket)] += 1
            self._hists[_field(name + "_sum", labels)] += max(seconds, 0.0)

    def flush(self) -> bool:
        """Write the buffer in one pipeline; on failure keep it for later. True if written."""
        if time.monotonic() < self._skip_until:
            return False
        with self._lock:
            counts, hists = dict(self._counts), dict(self._hists)
            self._counts.clear()
            self._hists.clear()
        if not counts and not hists:
            return True
        try:
            pipe = self.client.pipeline(transaction=False)
            for field, value in counts.items():
                pipe.hincrbyfloat(COUNTERS_KEY, field, value)
            for field, value in hists.items():
                pipe.hincrbyfloat(HISTOGRAMS_KEY, field, value)
            pipe.execute()
            return True
        except (redis.RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + BREAKER_SECONDS
            with self._lock:
                for field, value in counts.items():
                    self._counts[field] += value
                for field, value in hists.items():
                    self._hists[field] += value
            log.warning("metrics not written (kept for later): %s", exc)
            return False

    def read(self) -> tuple[dict[str, float], dict[str, float]]:
        """Every stored counter and histogram field, as numbers."""
        counters = self.client.hgetall(COUNTERS_KEY)
        hists = self.client.hgetall(HISTOGRAMS_KEY)

        def decode(raw: dict[bytes, bytes]) -> dict[str, float]:
            return {k.decode(): float(v) for k, v in raw.items()}

        return decode(counters), decode(hists)


def cumulative(
    per_bucket: Mapping[str, float], buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> list[tuple[str, float]]:
    """Prometheus' cumulative (le, count) pairs from stored per-bucket counts, +Inf last."""
    total, out = 0.0, []
    for bound in [*(str(b) for b in buckets), "+Inf"]:
        total += per_bucket.get(bound, 0.0)
        out.append((bound, total))
    return out


def is_finite(value: float) -> bool:
    """Whether a latency is worth recording (clock skew can make it odd)."""
    return math.isfinite(value) and value >= 0


_active = False
# Called before each flush: a source that cannot record as it goes (the garbage collector's
# callbacks must not take the store's lock) hands over what it gathered meanwhile.
_sources: list[Callable[[], None]] = []


def add_source(drain: Callable[[], None]) -> None:
    """Have `drain` record its gathered observations before every flush of this process."""
    if drain not in _sources:
        _sources.append(drain)


def activate() -> None:
    """Let this process write its metrics (web and worker processes; not unit tests or tools)."""
    global _active
    if not _active:
        # What a short-lived process (a CLI command) counted is written when it ends.
        atexit.register(flush)
        # A forked child (a Celery pool process) starts with a store of its own: the parent's
        # buffer is the parent's to write, and its lock may have been held by another thread.
        os.register_at_fork(after_in_child=store.cache_clear)
    _active = True


_flusher_pid = 0


def start_flusher(seconds: float = FLUSH_EVERY_SECONDS) -> None:
    """Write this process's buffer every `seconds` from a daemon thread, one per process."""
    global _flusher_pid
    # A forked child inherits the flag but not the thread.
    if _flusher_pid == os.getpid():
        return
    _flusher_pid = os.getpid()
    threading.Thread(
        target=_flush_forever, args=(seconds,), name="metrics-flush", daemon=True
    ).start()


def _flush_forever(seconds: float) -> None:
    """The flusher thread's loop."""
    while True:
        time.sleep(seconds)
        try:
            flush()
        except Exception:  # the next second tries again
            log.exception("metrics flush failed")


@lru_cache(maxsize=1)
def store() -> MetricsStore:
    """This process's store, created on first use (after a worker forks)."""
    client = redis.Redis.from_url(
        get_settings().redis_url, socket_connect_timeout=0.5, socket_timeout=1
    )
    return MetricsStore(client)


def count(name: str, amount: float = 1, **labels: str) -> None:
    """Add to a counter in this process's buffer."""
    store().count(name, amount, **labels)


def observe(name: str, seconds: float, **labels: str) -> None:
    """Record one observation of a histogram in this process's buffer."""
    if is_finite(seconds):
        store().observe(name, seconds, **labels)


def flush() -> bool:
    """Write this process's buffer to Redis now, if this process writes metrics at all."""
    if not _active:
        return False
    for drain in _sources:
        try:
            drain()
        except Exception:  # a broken source must not cost the other metrics
            log.exception("metrics source %r failed", drain)
    return store().flush()
