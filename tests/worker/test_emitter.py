"""The worker's emitter against a real Redis: one emit, a batch in one trip, failures raised."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.support.net import free_port
from worker.emitter import StrictRedisManager


@pytest.fixture
def channel() -> str:
    """A channel of this test alone, so no web process or other test hears it."""
    return f"emitter-test-{uuid.uuid4().hex}"


@pytest.fixture
def heard(redis_url: str, channel: str) -> Iterator[redis.client.PubSub]:
    """A subscriber to the test's channel, subscribed before anything is published."""
    pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    try:
        yield pubsub
    finally:
        pubsub.close()


def manager(url: str, channel: str) -> StrictRedisManager:
    """A write-only manager as the worker builds it."""
    return StrictRedisManager(
        url,
        channel=channel,
        write_only=True,
        redis_options={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    )


def drain(pubsub: redis.client.PubSub, wait: float = 0.3) -> list[dict[str, Any]]:
    """The messages heard until none arrives for `wait` seconds, decoded (data is a list)."""
    messages = []
    while (message := pubsub.get_message(timeout=wait)) is not None:
        messages.append(json.loads(message["data"]))
    return messages


def test_a_batch_publishes_its_emits_in_order_only_when_it_ends(
    redis_url: str, channel: str, heard: redis.client.PubSub
) -> None:
    emitter = manager(redis_url, channel)
    with emitter.batch():
        for seq in (1, 2, 3):
            emitter.emit("notification", {"seq": seq}, namespace="/", room=f"user:{seq}")
        with emitter.batch():  # a nested block publishes with the outer one
            emitter.emit("notification", {"seq": 4}, namespace="/", room="user:4")
        assert drain(heard, wait=0.2) == []
    messages = drain(heard)
    assert [(m["data"][0], m["room"], m["event"]) for m in messages] == [
        ({"seq": seq}, f"user:{seq}", "notification") for seq in (1, 2, 3, 4)
    ]
    emitter.emit("notification", {"seq": 5}, namespace="/", room="user:5")
    assert [m["data"][0] for m in drain(heard)] == [{"seq": 5}]


def test_a_block_that_raises_publishes_nothing(
    redis_url: str, channel: str, heard: redis.client.PubSub
) -> None:
    emitter = manager(redis_url, channel)
    with pytest.raises(KeyError), emitter.batch():
        emitter.emit("notification", {"seq": 1}, namespace="/", room="user:1")
        raise KeyError("rendering failed")
    assert drain(heard) == []
    emitter.emit("notification", {"seq": 2}, namespace="/", room="user:2")
    assert [m["data"][0] for m in drain(heard)] == [{"seq": 2}]


def test_an_unreachable_redis_raises_from_the_batch_and_the_next_emit_reconnects(
    redis_url: str, channel: str, heard: redis.client.PubSub
) -> None:
    emitter = manager(f"redis://127.0.0.1:{free_port()}/0", channel)
    started = time.monotonic()
    with pytest.raises(redis.exceptions.ConnectionError), emitter.batch():
        emitter.emit("notification", {"seq": 1}, namespace="/", room="user:1")
    assert time.monotonic() - started < 5
    assert emitter.connected is False
    with pytest.raises(redis.exceptions.ConnectionError):
        emitter.emit("notification", {"seq": 1}, namespace="/", room="user:1")
    # The same manager, pointed back at a live Redis, reconnects on its next batch.
    emitter.redis_url = redis_url
    with emitter.batch():
        emitter.emit("notification", {"seq": 2}, namespace="/", room="user:2")
    assert [m["data"][0] for m in drain(heard)] == [{"seq": 2}]
