"""kombu's Redis transport, with one client per channel instead of one per command."""

from __future__ import annotations

from typing import Any

from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis

NAME = "worker.redis_transport:Transport"


class Channel(kombu_redis.Channel):
    """A Redis channel that keeps its synchronous client rather than building one per use.

    kombu builds a new `redis.Redis` on its shared pool for every publish, acknowledgement and
    unacked-bookkeeping call, and redis-py's constructor costs ~90 us (it fills a table of
    ~150 response callbacks): a sixth of a web publish and two constructions per task a worker
    receives (docs/BENCHMARKS.md). A client on a pool holds no state of its own, and redis-py
    clients are safe to share between threads, so one per pool serves every call.
    """

    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        """The channel's client on its current pool; a new one only when the pool changed."""
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            # After close() the channel builds a new pool; the old client must not outlive it.
            client = self._sync_client = self.Client(connection_pool=pool)
        return client


class Transport(kombu_redis.Transport):
    """The `redis://` transport built on `Channel` above."""

    Channel = Channel


def install() -> None:
    """Make `redis://` broker URLs use this transport in this process.

    Through kombu's alias table rather than Celery's `broker_transport`: with the latter,
    kombu names the connection by the class path (`worker.redis_transport:Transport://…`),
    and Flower, which picks its broker view by URL scheme, could no longer read the queues.
    `rediss://` and `sentinel://` keep kombu's own transports.
    """
    kombu_transport.TRANSPORT_ALIASES["redis"] = NAME
    # kombu remembers each alias's class on first use; one resolved before this call (any
    # kombu connection made earlier in the process) would keep kombu's own.
    kombu_transport._transport_cache.pop("redis", None)
