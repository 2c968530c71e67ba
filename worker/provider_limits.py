"""Provider rate limits shared by every worker process: a GCRA in Redis, in memory if Redis fails.

GCRA (the generic cell rate algorithm) keeps one float per key, the "theoretical arrival time"
(TAT) of the next send; a send may go when TAT - now fits in the burst allowance. One Lua
script checks and takes several keys at once (the bot's and the chat's), all or none, with
Redis's clock, so workers on different hosts agree. Keys expire when their TAT passes, when
they would read as new anyway.

Rates and bursts: a GCRA allows `burst + per_second * w - 1` sends in any window of `w` seconds
(a full burst, then one per interval), so the burst is kept small: a burst equal to the rate
would let twice the rate through in a second.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# (key, sends per second, burst): one limit a send must fit in.
Limit = tuple[str, float, int]

# Telegram: about 30 messages/s per bot (any 1 s window sees at most 25; a burst would only
# save the first few sends after a pause a few milliseconds) and one per second per chat.
TELEGRAM_BOT_PER_SECOND, TELEGRAM_BOT_BURST = 25.0, 1
# One per chat per second, granted every 1.1 s: the time between a grant and Telegram's receipt
# varies, and two sends granted exactly 1 s apart could arrive closer than that.
TELEGRAM_CHAT_PER_SECOND, TELEGRAM_CHAT_BURST = 1 / 1.1, 1
# VK: 20 calls/s per community token; 18 with burst 1 leaves room for jitter on the way.
VK_GROUP_PER_SECOND, VK_GROUP_BURST = 18.0, 1

DEFAULT_KEY_PREFIX = "provider-limit:"
# After a Redis failure the in-memory limiter is used this long before Redis is tried again,
# so a dead Redis costs one failed call per period, not one per send.
REDIS_RETRY_SECONDS = 5.0
# wait_for_slot sleeps at most this long between tries, so a freed slot is noticed soon.
MAX_SLEEP_STEP = 0.25

# KEYS: the limited keys; ARGV: interval and burst of each key, in order.
# Returns "0" when every key granted (and took them all), else the seconds to wait as a
# string (a Lua number would come back truncated to an integer).
GCRA_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now) or now
  if tat < now then tat = now end
  -- The send may go once the TAT is at most burst - 1 intervals ahead of now.
  local allow_at = tat - interval * (burst - 1)
  if allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat + interval
end
if wait > 0 then return string.format('%.6f', wait) end
for i, key in ipairs(KEYS) do
  local ttl = math.ceil((tats[i] - now) * 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', key, string.format('%.6f', tats[i]), 'PX', ttl)
end
return '0'
"""


class RateLimiter(Protocol):
    """Grants sends under several limits at once; 0.0 means go, else the seconds to wait."""

    def acquire_all(self, limits: Sequence[Limit]) -> float: ...


def _checked(limits: Sequence[Limit]) -> list[tuple[str, float, int]]:
    """The limits as (key, interval, burst), refusing nonsense a caller could pass."""
    keys = [key for key, _, _ in limits]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a key appears twice in {keys}")
    checked = []
    for key, per_second, burst in limits:
        if not per_second > 0 or not math.isfinite(per_second) or int(burst) < 1:
            raise ValueError(f"bad limit for {key!r}: {per_second}/s, burst {burst}")
        checked.append((key, 1.0 / per_second, int(burst)))
    return checked


class MemoryRateLimiter:
    """The same GCRA in this process's memory: the fallback when Redis is unreachable."""

    # Past this many keys, expired ones are dropped (they read as new anyway).
    PRUNE_AT = 10_000

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, per_second: float, burst: int = 1) -> float:
        """0.0 and the slot taken if a send may go now, else the seconds to wait (nothing taken)."""
        return self.acquire_all([(key, per_second, burst)])

    def acquire_all(self, limits: Sequence[Limit]) -> float:
        """Take a slot under every limit, or none: 0.0 if taken, else the longest wait."""
        checked = _checked(limits)
        with self._lock:
            now = time.monotonic()
            wait = 0.0
            new_tats: list[float] = []
            for key, interval, burst in checked:
                tat = max(self._tats.get(key, now), now)
                wait = max(wait, tat - interval * (burst - 1) - now)
                new_tats.append(tat + interval)
            if wait > 0:
                return wait
            for (key, _, _), new_tat in zip(checked, new_tats, strict=True):
                self._tats[key] = new_tat
            if len(self._tats) > self.PRUNE_AT:
                self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
            return 0.0


class RedisRateLimiter:
    """GCRA limits in Redis shared by every process; never raises for a Redis failure."""

    def __init__(
        self,
        redis_client: redis.Redis,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        retry_redis_after: float = REDIS_RETRY_SECONDS,
    ) -> None:
        self.redis = redis_client
        self.key_prefix = key_prefix
        self.retry_redis_after = retry_redis_after
        self.fallback = MemoryRateLimiter()
        self._script = redis_client.register_script(GCRA_SCRIPT)
        self._redis_down_until = 0.0
        self._lock = threading.Lock()

    @property
    def using_fallback(self) -> bool:
        """Whether sends are limited in this process's memory because Redis failed."""
        return self._redis_down_until > time.monotonic()

    def acquire(self, key: str, per_second: float, burst: int = 1) -> float:
        """0.0 and the slot taken if a send may go now, else the seconds to wait (nothing taken)."""
        return self.acquire_all([(key, per_second, burst)])

    def acquire_all(self, limits: Sequence[Limit]) -> float:
        """Take a slot under every limit, or none: 0.0 if taken, else the longest wait."""
        checked = _checked(limits)
        if not checked:
            return 0.0
        if self.using_fallback:
            return self.fallback.acquire_all(limits)
        args: list[Any] = []
        for _, interval, burst in checked:
            args += [repr(interval), str(burst)]
        try:
            answer = self._script(keys=[self.key_prefix + k for k, _, _ in checked], args=args)
            wait = float(answer)
        except (redis.RedisError, OSError, ValueError) as exc:
            self._redis_failed(exc)
            return self.fallback.acquire_all(limits)
        self._redis_answered()
        return wait

    def _redis_failed(self, exc: Exception) -> None:
        """Switch to the in-memory limiter for a while; log once per outage."""
        with self._lock:
            first = self._redis_down_until == 0.0
            self._redis_down_until = time.monotonic() + self.retry_redis_after
        if first:
            # Per process, so N workers may together send up to N times a limit meanwhile.
            log.warning(
                "provider rate limits: Redis failed (%s: %s); limiting in this process's "
                "memory until it answers",
                type(exc).__name__,
                exc,
            )

    def _redis_answered(self) -> None:
        """Note that Redis answers again, once."""
        if self._redis_down_until != 0.0:
            with self._lock:
                recovered = self._redis_down_until != 0.0
                self._redis_down_until = 0.0
            if recovered:
                log.info("provider rate limits: Redis answers again; limits are shared again")


def wait_for_slot(limiter: RateLimiter, limits: Sequence[Limit], deadline: float) -> bool:
    """Sleep until every limit grants a slot (True), or False once `deadline` cannot be met.

    `deadline` is a time.monotonic() value. A wait that would end past it returns False at
    once: other senders can only make it longer.
    """
    while True:
        wait = limiter.acquire_all(limits)
        if wait <= 0:
            return True
        remaining = deadline - time.monotonic()
        if wait > remaining:
            return False
        time.sleep(min(wait, MAX_SLEEP_STEP))


def telegram_limits(chat_id: str, bot_key: str = "bot") -> list[Limit]:
    """The limits one Telegram message must fit in: the bot's and its chat's."""
    return [
        (f"telegram:{bot_key}", TELEGRAM_BOT_PER_SECOND, TELEGRAM_BOT_BURST),
        (f"telegram:chat:{chat_id}", TELEGRAM_CHAT_PER_SECOND, TELEGRAM_CHAT_BURST),
    ]


def vk_limits(group_id: int | str) -> list[Limit]:
    """The limit one VK call must fit in: its community's."""
    return [(f"vk:group:{group_id}", VK_GROUP_PER_SECOND, VK_GROUP_BURST)]


def limiter_client(url: str) -> redis.Redis:
    """A Redis client that fails fast: a limiter waiting on a dead Redis would stall sends."""
    # redis-py's default retries with backoff would hold each call for seconds.
    return redis.Redis.from_url(
        url, socket_connect_timeout=0.5, socket_timeout=1.0, retry=Retry(NoBackoff(), 0)
    )


@lru_cache(maxsize=1)
def get_limiter() -> RedisRateLimiter:
    """This process's limiter on the configured Redis, built on first use (after a fork)."""
    from core.settings import get_settings  # Late: tests build limiters without settings.

    return RedisRateLimiter(limiter_client(get_settings().redis_url))
