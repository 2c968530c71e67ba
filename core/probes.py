"""Proofs of life kept in Redis: canary answers, beat's last tick, messengers' token failures."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

import redis

from core.settings import get_settings

CANARY_KEY = "health:canary:"
BEAT_TICK_KEY = "health:beat:last_tick"
# An answer nobody reads any more (the check timed out) disappears by itself.
CANARY_TTL_SECONDS = 60
BEAT_TICK_TTL_SECONDS = 7 * 24 * 3600
PROVIDER_FAILURE_KEY = "health:provider:"
# A token failure stays reported this long after the last one, unless a send succeeds first.
PROVIDER_FAILURE_TTL_SECONDS = 600


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """Tell whether the Redis at `url` answers PING within `timeout` seconds."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    """A Redis client with short timeouts: a probe must not hang its caller."""
    return redis.Redis.from_url(
        get_settings().redis_url, socket_connect_timeout=1, socket_timeout=2
    )


def answer_canary(token: str, worker: str | None, queue: str | None) -> None:
    """Record that a worker ran the canary task `token`."""
    body = json.dumps({"worker": worker, "queue": queue, "at": time.time()})
    client().set(CANARY_KEY + token, body, ex=CANARY_TTL_SECONDS)


def read_canary(token: str) -> dict[str, Any] | None:
    """The answer to canary `token`, or None while no worker has run it."""
    raw = client().get(CANARY_KEY + token)
    return json.loads(raw) if raw else None


def record_beat_tick(now: float | None = None) -> None:
    """Record that beat is alive and sending its schedule."""
    client().set(BEAT_TICK_KEY, repr(now or time.time()), ex=BEAT_TICK_TTL_SECONDS)


def last_beat_tick() -> float | None:
    """When beat last sent a scheduled task (Unix time), or None if never seen."""
    raw = client().get(BEAT_TICK_KEY)
    return float(raw) if raw else None


def record_provider_failure(channel: str, detail: str) -> None:
    """Note that a messenger refused our token; deep health is red until a send succeeds."""
    body = json.dumps({"error": detail, "at": time.time()})
    client().set(PROVIDER_FAILURE_KEY + channel, body, ex=PROVIDER_FAILURE_TTL_SECONDS)


def clear_provider_failure(channel: str) -> None:
    """A send went through: the token works."""
    client().delete(PROVIDER_FAILURE_KEY + channel)


def provider_failure(channel: str) -> dict[str, Any] | None:
    """The last token failure of a messenger still reported, or None."""
    raw = client().get(PROVIDER_FAILURE_KEY + channel)
    return json.loads(raw) if raw else None
