"""The worker's only Socket.IO import: a write-only client of Flask-SocketIO's Redis queue."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import socketio

from core.rooms import SOCKETIO_CHANNEL, user_room
from core.settings import get_settings


class StrictRedisManager(socketio.RedisManager):
    """A RedisManager whose publish raises on failure instead of logging and dropping it."""

    def _publish(self, data: Any) -> Any:
        """Publish one message, so that a lost emit becomes a retried task, not a silent gap."""
        if not self.connected:
            self._redis_connect()
        try:
            return self.redis.publish(self.channel, self.json.dumps(data))
        except Exception:
            self.connected = False
            raise


@lru_cache(maxsize=1)
def _manager() -> StrictRedisManager:
    """One write-only manager per process, created lazily after the worker forks."""
    return StrictRedisManager(
        get_settings().redis_url,
        channel=SOCKETIO_CHANNEL,
        write_only=True,
        redis_options={"socket_connect_timeout": 2, "socket_timeout": 5},
    )


def emit_to_user(user_id: str, event: str, data: dict[str, Any]) -> None:
    """Emit an event to every socket of one user, on every web process."""
    _manager().emit(event, data, namespace="/", room=user_room(user_id))
