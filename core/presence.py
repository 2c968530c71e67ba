"""Who is connected, as the web processes record it in Redis (web/presence.py writes it)."""

from __future__ import annotations

import redis

# One hash per web process: socket id -> user id, expiring unless the process refreshes it.
PRESENCE_PREFIX = "presence:"


def connected_user_ids(client: redis.Redis) -> set[str]:
    """The users with at least one socket on any live web process."""
    users: set[str] = set()
    for key in client.scan_iter(match=f"{PRESENCE_PREFIX}*", count=500):
        users.update(v.decode() if isinstance(v, bytes) else v for v in client.hvals(key))
    return users
