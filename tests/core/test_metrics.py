"""Counters and histograms in Redis: several writers add up, and a Redis outage loses nothing."""

from __future__ import annotations

import os
import time

import redis

from core import metrics
from core.metrics import MetricsStore, cumulative, parse_field


def test_two_processes_add_to_one_total(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.delete(metrics.COUNTERS_KEY, metrics.HISTOGRAMS_KEY)
    first, second = MetricsStore(client), MetricsStore(client)
    first.count("deliveries", channel="inbox", outcome="sent")
    second.count("deliveries", 2, channel="inbox", outcome="sent")
    first.observe("commit_to_emit_seconds", 0.02)
    second.observe("commit_to_emit_seconds", 7.0)

    assert first.flush() and second.flush()

    counters, hists = first.read()
    assert counters == {"deliveries|channel=inbox,outcome=sent": 3.0}
    name, labels = parse_field("deliveries|channel=inbox,outcome=sent")
    assert (name, labels) == ("deliveries", {"channel": "inbox", "outcome": "sent"})
    per_bucket = {parse_field(f)[1]["le"]: v for f, v in hists.items() if "le=" in f}
    buckets = dict(cumulative(per_bucket))
    assert (buckets["0.01"], buckets["0.025"], buckets["10.0"], buckets["+Inf"]) == (0, 1, 2, 2)
    assert hists["commit_to_emit_seconds_sum|"] == 7.02


def test_counts_survive_an_unreachable_redis(redis_url):
    down = MetricsStore(redis.Redis(port=1, socket_connect_timeout=0.2))
    down.count("task_retries", task="notifications.deliver_live")

    assert not down.flush()

    up = redis.Redis.from_url(redis_url)
    up.delete(metrics.COUNTERS_KEY)
    down.client, down._skip_until = up, 0.0
    assert down.flush()
    assert down.read()[0] == {"task_retries|task=notifications.deliver_live": 1.0}


def _process_metrics(monkeypatch, redis_url) -> redis.Redis:
    """This process writing metrics to the test Redis, as a worker process does."""
    from core.settings import get_settings

    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    metrics.store.cache_clear()
    monkeypatch.setattr(metrics, "_active", False)
    client = redis.Redis.from_url(redis_url)
    client.delete(metrics.COUNTERS_KEY, metrics.HISTOGRAMS_KEY)
    metrics.activate()
    return client


def test_the_flusher_writes_without_being_asked(monkeypatch, redis_url):
    """A worker process's counts reach Redis within a flusher period, with no task hook."""
    client = _process_metrics(monkeypatch, redis_url)
    monkeypatch.setattr(metrics, "_flusher_pid", 0)
    metrics.count("emails", provider_status="202")
    metrics.start_flusher(0.05)
    deadline = time.monotonic() + 5
    while not client.hget(metrics.COUNTERS_KEY, "emails|provider_status=202"):
        assert time.monotonic() < deadline, "the flusher wrote nothing"
        time.sleep(0.02)
    assert float(client.hget(metrics.COUNTERS_KEY, "emails|provider_status=202")) == 1.0


def test_a_forked_child_writes_only_its_own_counts(monkeypatch, redis_url):
    """The parent's unwritten buffer is not written twice by a pool process forked from it."""
    client = _process_metrics(monkeypatch, redis_url)
    metrics.count("task_retries", task="parent")
    pid = os.fork()
    if pid == 0:  # the child: count, write, and leave without the parent's exit handlers
        try:
            metrics.count("task_retries", task="child")
            os._exit(0 if metrics.flush() else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert metrics.flush()
    counters = {k.decode(): float(v) for k, v in client.hgetall(metrics.COUNTERS_KEY).items()}
    assert counters == {"task_retries|task=parent": 1.0, "task_retries|task=child": 1.0}
    metrics.store.cache_clear()
