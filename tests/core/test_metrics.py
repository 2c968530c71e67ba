"""Counters and histograms in Redis: several writers add up, and a Redis outage loses nothing."""

from __future__ import annotations

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
