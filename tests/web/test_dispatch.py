"""The web tier's broker client: coalesced publishes to a real Redis, and the circuit breaker."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from core import logs
from tests.support.net import free_port
from tests.support.redis_server import RedisServer
from web.celery_client import build_celery_client
from web.dispatch import LINGER_SECONDS, BrokerClient


def _client(url: str, spawn: Callable[[Callable[[], None]], Any]) -> BrokerClient:
    """A broker client publishing to `url`."""
    return BrokerClient(spawn=spawn, celery=build_celery_client(url))


def _tasks(url: str, queue: str) -> list[dict[str, Any]]:
    """The task messages waiting in `queue`, oldest first: task name, args and headers."""
    raw = redis.Redis.from_url(url).lrange(queue, 0, -1)
    messages = [json.loads(m) for m in reversed(raw)]  # kombu LPUSHes, workers BRPOP
    return [
        {
            "task": m["headers"]["task"],
            "args": json.loads(base64.b64decode(m["body"]))[0],
            "headers": m["headers"],
        }
        for m in messages
    ]


@pytest.fixture
def spawned() -> list[Callable[[], None]]:
    """Flushes handed to `spawn`, to be run when the test says (as a green thread would)."""
    return []


def test_commits_made_while_a_flush_waits_share_one_task_per_channel(
    private_redis: RedisServer, spawned: list[Callable[[], None]]
) -> None:
    client = _client(private_redis.url, spawned.append)
    for i in range(3):
        with logs.bound(request_id=f"req-{i}"):
            client.enqueue("inbox", [f"inbox-{i}"])
            client.enqueue("email", [f"email-{i}"])
    assert len(spawned) == 1  # one flush for all of them
    spawned[0]()

    [live] = _tasks(private_redis.url, "realtime")
    [email] = _tasks(private_redis.url, "email")
    assert live["task"] == "notifications.deliver_live"
    assert live["args"] == [["inbox-0", "inbox-1", "inbox-2"]]
    assert email["args"] == [["email-0", "email-1", "email-2"]]
    assert live["headers"]["request_id"] == "req-0,req-1,req-2"


def test_an_idle_client_publishes_each_commit_at_once(private_redis: RedisServer) -> None:
    client = _client(private_redis.url, lambda flush: flush())
    client.enqueue("inbox", ["a"])
    client.enqueue("inbox", ["b", "c"])
    assert [t["args"] for t in _tasks(private_redis.url, "realtime")] == [[["a"]], [["b", "c"]]]
    assert client.flushing is False


def test_a_busy_client_waits_out_the_linger_and_shares_the_task(
    private_redis: RedisServer, spawned: list[Callable[[], None]]
) -> None:
    """After a publish, commits wait up to LINGER_SECONDS and then share one task."""
    client = _client(private_redis.url, spawned.append)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:  # requests that committed during the wait
            client.enqueue("inbox", ["b"])
            client.enqueue("inbox", ["c"])

    client.sleep = sleep
    client.enqueue("inbox", ["a"])
    spawned[0]()
    assert len(spawned) == 1
    # "a" went out at once (a quiet start); the second wait found nothing more and ended it.
    assert [t["args"] for t in _tasks(private_redis.url, "realtime")] == [[["a"]], [["b", "c"]]]
    assert len(waits) == 2 and all(0 < w <= LINGER_SECONDS for w in waits)
    assert client.flushing is False


def test_a_large_backlog_is_split_into_task_sized_batches(
    private_redis: RedisServer, spawned: list[Callable[[], None]]
) -> None:
    client = _client(private_redis.url, spawned.append)
    ids = [f"d{i}" for i in range(450)]
    client.enqueue("inbox", ids[:300])
    client.enqueue("inbox", ids[300:])
    spawned[0]()
    batches = [t["args"][0] for t in _tasks(private_redis.url, "realtime")]
    assert [len(b) for b in batches] == [200, 200, 50]
    assert sum(batches, []) == ids


def test_commits_during_a_flush_are_published_by_the_same_flush(
    private_redis: RedisServer, spawned: list[Callable[[], None]]
) -> None:
    client = _client(private_redis.url, spawned.append)
    original = client._publish

    def publish_and_commit_again(channel: str, ids: list[str]) -> None:
        original(channel, ids)
        if ids == ["first"]:
            client.enqueue("inbox", ["second"])  # a request that committed meanwhile

    client._publish = publish_and_commit_again  # type: ignore[method-assign]
    client.enqueue("inbox", ["first"])
    spawned[0]()
    assert len(spawned) == 1
    assert [t["args"] for t in _tasks(private_redis.url, "realtime")] == [[["first"]], [["second"]]]


def test_a_broker_outage_opens_the_breaker_and_never_reaches_the_request(
    spawned: list[Callable[[], None]], caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(f"redis://127.0.0.1:{free_port()}/0", spawned.append)
    client.enqueue("inbox", ["lost-for-now"])
    spawned[0]()  # the publish fails inside the flush, which logs and returns
    assert "could not enqueue 1 inbox deliveries" in caplog.text
    assert client.flushing is False
    with pytest.raises(ConnectionError, match="left to the sweeper"):
        client.enqueue("inbox", ["next"])  # requests skip the broker while the breaker is open
    client.open_until = 0.0
    client.enqueue("inbox", ["after"])
    assert len(spawned) == 2
