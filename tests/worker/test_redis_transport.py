"""The broker transport keeps one Redis client per channel and pool, and still moves messages."""

from __future__ import annotations

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


def test_every_process_gets_the_transport_under_the_redis_scheme(redis_url: str) -> None:
    """The worker, beat and Flower (worker.celery_app) and the web's client (web.dispatch)."""
    from kombu.transport import TRANSPORT_ALIASES

    import worker.celery_app
    from web.dispatch import BrokerClient

    assert TRANSPORT_ALIASES["redis"] == "worker.redis_transport:Transport"
    for app in (worker.celery_app.app, BrokerClient().celery):
        with app.connection_for_write() as conn:
            assert isinstance(conn.transport, Transport)
            # Flower picks its broker view by this URL's scheme.
            assert conn.as_uri().startswith("redis://"), conn.as_uri()
    with Connection(redis_url.replace("redis://", "rediss://", 1)) as tls:
        assert not isinstance(tls.transport, Transport)


def test_one_client_serves_every_publish_and_messages_arrive(connection: Connection) -> None:
    """200 publishes on one channel build one client; every message is consumed once."""
    # One channel from one thread, as Celery's producer pool hands them out: kombu's channels
    # are not thread-safe (four threads sharing one channel here lost a message in 2 of 10
    # runs).
    name = f"transport-{uuid.uuid4().hex}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    channel = connection.default_channel
    built: list[object] = []
    original = channel.Client

    def counting(*args: object, **kwargs: object) -> object:
        built.append(kwargs.get("connection_pool"))
        return original(*args, **kwargs)

    channel.Client = counting
    producer = connection.Producer(channel)
    for n in range(200):
        producer.publish({"n": n}, exchange=queue.exchange, routing_key=name, declare=[queue])
    assert len(built) == 1, len(built)
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
