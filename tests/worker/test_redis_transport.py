"""The broker transport keeps one Redis client per channel and pool, and still moves messages."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection, Exchange, Queue

from worker.redis_transport import Transport


@pytest.fixture
def connection(redis_url: str) -> Iterator[Connection]:
    """A kombu connection to the test Redis through our transport."""
    with Connection(redis_url, transport=Transport) as conn:
        yield conn


def test_celeryconfig_picks_the_transport_for_redis_urls() -> None:
    """Every process (web, worker, beat, flower) reads it from celeryconfig."""
    import celeryconfig

    assert celeryconfig.broker_transport == "worker.redis_transport:Transport"


def test_one_client_serves_every_publish_and_messages_arrive(connection: Connection) -> None:
    """200 publishes from four threads build one client; every message is consumed once."""
    name = f"transport-{uuid.uuid4().hex}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    channel = connection.default_channel
    built: list[object] = []
    original = channel.Client

    def counting(*args: object, **kwargs: object) -> object:
        built.append(kwargs.get("connection_pool"))
        return original(*args, **kwargs)

    channel.Client = counting

    def publish(start: int) -> None:
        producer = connection.Producer(channel)
        for n in range(start, start + 50):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key=name, declare=[queue])

    threads = [threading.Thread(target=publish, args=(i * 50,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Racing threads may each build one before the first is kept; never one per publish.
    assert 1 <= len(built) <= 4, len(built)
    received: list[int] = []
    simple = connection.SimpleQueue(queue)
    while len(received) < 200:
        message = simple.get(timeout=5)
        received.append(message.payload["n"])
        message.ack()
    assert sorted(received) == list(range(200))
    simple.close()
    channel.queue_delete(name)


def test_a_new_pool_gets_a_new_client(redis_url: str) -> None:
    """A channel's pool is rebuilt after close(); the client kept must follow it."""
    with Connection(redis_url, transport=Transport) as conn:
        channel = conn.channel()
        first = channel._create_client()
        assert channel._create_client() is first
        assert first.connection_pool is channel.pool
        channel._pool = None  # what close() and a fork's reset do
        second = channel._create_client()
        assert second is not first
        assert second.connection_pool is channel.pool
        assert second.ping()
        # The event loop's BRPOP client stays kombu's own, built per call.
        assert channel._create_client(asynchronous=True) is not second
        channel.close()
