"""Live connections kept in Redis: counts every web process sees, and a cap per user across them."""

from __future__ import annotations

import logging
import os
import time
import uuid

import redis

from core.presence import PRESENCE_PREFIX

log = logging.getLogger(__name__)
PREFIX = PRESENCE_PREFIX
# One sorted set per user: member = socket id, score = when the entry lapses unless refreshed.
USER_SOCKETS_PREFIX = "sockets:user:"
# A process that dies stops refreshing its key; the key then expires with its connections.
TTL_SECONDS = 30
HEARTBEAT_SECONDS = 10
# Sockets one heartbeat round trip reads or refreshes. In one pipeline, 2,000 sockets' 4,000
# commands held the process for ~110 ms of encoding and parsing every 10 s, every socket
# waiting (eventlet's B3 p99, docs/BENCHMARKS.md, issue 15); 100 take ~6 ms.
REFRESH_BATCH = 100


# Drop the user's lapsed entries (a dead process's), then add this socket unless the user is at
# the cap. One script, so two processes admitting the same user at once cannot both pass at N-1.
ADMIT_SCRIPT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
"""


class Presence:
    """One web process's sockets (sid → user id) in a Redis hash that expires unless refreshed."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.key = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.local: dict[str, str] = {}
        self._admit = client.register_script(ADMIT_SCRIPT)

    def admit(self, sid: str, user_id: str, cap: int) -> bool:
        """Record a connected socket unless its user already holds `cap` across every process.

        With Redis away the cap holds per process, and the socket is recorded on the next
        heartbeat that reaches Redis.
        """
        # Known locally before Redis hears of it: a heartbeat running meanwhile must not take
        # the entry the script writes for a stale one.
        others = sum(1 for owner in self.local.values() if owner == user_id)
        self.local[sid] = user_id
        try:
            keys = [f"{USER_SOCKETS_PREFIX}{user_id}", self.key]
            admitted = self._admit(keys=keys, args=[time.time(), cap, TTL_SECONDS, sid, user_id])
        except redis.RedisError as exc:
            log.warning("socket cap checked in this process only: %s", exc)
            admitted = others < cap
        if not admitted:
            self.local.pop(sid, None)
        return bool(admitted)

    def remove(self, sid: str) -> None:
        """Forget a disconnected socket."""
        user_id = self.local.pop(sid, None)

        def forget() -> None:
            pipe = self.client.pipeline(transaction=False)
            pipe.hdel(self.key, sid)
            if user_id is not None:
                pipe.zrem(f"{USER_SOCKETS_PREFIX}{user_id}", sid)
            pipe.execute()

        self._safely(forget)

    def heartbeat(self) -> None:
        """Rewrite this process's hash and push its expiry out (it heals after a Redis outage)."""

        def rewrite() -> None:
            # Never DELETE and re-add: a socket admitted while a write is on its way (a connect
            # burst) would vanish from presence until the next heartbeat, and a broadcast would
            # skip its user. Entries left by sockets whose removal failed (Redis was away) are
            # dropped one by one, judged against the live map.
            stale = [
                sid
                for sid, _ in self.client.hscan_iter(self.key, count=REFRESH_BATCH)
                if (sid.decode() if isinstance(sid, bytes) else sid) not in self.local
            ]
            if stale:
                self.client.hdel(self.key, *stale)
            # A batch of sockets per round trip, other green threads running while Redis answers
            # each. A batch is read from the live map as it is sent, so a socket that left
            # meanwhile is not written back.
            sids = list(self.local)
            for start in range(0, len(sids), REFRESH_BATCH):
                batch = {
                    sid: self.local[sid]
                    for sid in sids[start : start + REFRESH_BATCH]
                    if sid in self.local
                }
                if not batch:
                    continue
                lapses = time.time() + TTL_SECONDS
                pipe = self.client.pipeline(transaction=False)
                pipe.hset(self.key, mapping=batch)
                pipe.expire(self.key, TTL_SECONDS)
                # Each socket's entry in its user's set too (re-added after an outage).
                for sid, user_id in batch.items():
                    pipe.zadd(f"{USER_SOCKETS_PREFIX}{user_id}", {sid: lapses})
                    pipe.expire(f"{USER_SOCKETS_PREFIX}{user_id}", TTL_SECONDS)
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

    def _safely(self, operation: object) -> None:
        """Run a Redis write, logging instead of failing the socket when Redis is away."""
        try:
            operation()  # type: ignore[operator]
        except redis.RedisError as exc:
            log.warning("presence update failed: %s", exc)
