"""Live connection counts kept in Redis, so every web process sees the sum over all of them."""

from __future__ import annotations

import logging
import os
import uuid

import redis

log = logging.getLogger(__name__)
PREFIX = "presence:"
# A process that dies stops refreshing its key; the key then expires with its connections.
TTL_SECONDS = 30
HEARTBEAT_SECONDS = 10


class Presence:
    """One web process's sockets (sid → user id) in a Redis hash that expires unless refreshed."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.key = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.local: dict[str, str] = {}

    def add(self, sid: str, user_id: str) -> None:
        """Record a connected socket."""
        self.local[sid] = user_id
        self._safely(lambda: self._write({sid: user_id}))

    def remove(self, sid: str) -> None:
        """Forget a disconnected socket."""
        self.local.pop(sid, None)
        self._safely(lambda: self.client.hdel(self.key, sid))

    def heartbeat(self) -> None:
        """Rewrite this process's hash and push its expiry out (it heals after a Redis outage)."""
        snapshot = dict(self.local)

        def rewrite() -> None:
            pipe = self.client.pipeline()
            pipe.delete(self.key)
            if snapshot:
                pipe.hset(self.key, mapping=snapshot)
                pipe.expire(self.key, TTL_SECONDS)
            pipe.execute()

        self._safely(rewrite)

    def counts(self) -> dict[str, int]:
        """Connections and distinct users across every live web process."""
        total = 0
        users: set[str] = set()
        for key in self.client.scan_iter(match=f"{PREFIX}*", count=500):
            values = self.client.hvals(key)
            total += len(values)
            users.update(v.decode() if isinstance(v, bytes) else v for v in values)
        return {"connections": total, "users": len(users)}

    def _write(self, mapping: dict[str, str]) -> None:
        pipe = self.client.pipeline()
        pipe.hset(self.key, mapping=mapping)
        pipe.expire(self.key, TTL_SECONDS)
        pipe.execute()

    def _safely(self, operation: object) -> None:
        """Run a Redis write, logging instead of failing the socket when Redis is away."""
        try:
            operation()  # type: ignore[operator]
        except redis.RedisError as exc:
            log.warning("presence update failed: %s", exc)
