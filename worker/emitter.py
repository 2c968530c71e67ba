"""The worker's only Socket.IO import: a write-only client of Flask-SocketIO's Redis queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import socketio

from core.rooms import SOCKETIO_CHANNEL, user_room
from core.settings import get_settings


class StrictRedisManager(socketio.RedisManager):
    """A RedisManager whose publish raises on failure, and can publish a batch in one trip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per thread, in case a worker runs a thread pool: batch()'s held messages.
        self._local = threading.local()

    def _publish(self, data: Any) -> Any:
        """Publish one message (or hold it for the batch), raising if Redis did not take it."""
        message = self.json.dumps(data)
        held = getattr(self._local, "held", None)
        if held is not None:
            held.append(message)
            return None
        return self._send([message])

    def _send(self, messages: list[Any]) -> Any:
        """Publish in order in one round trip, so that a lost emit becomes a retried task."""
        if not self.connected:
            self._redis_connect()
        try:
            if len(messages) == 1:  # a pipeline of one costs ~10 us more than the command
                return self.redis.publish(self.channel, messages[0])
            pipe = self.redis.pipeline(transaction=False)
            for message in messages:
                pipe.publish(self.channel, message)
            return pipe.execute()
        except Exception:
            self.connected = False
            raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the emits made inside, then publish them in order in one pipelined round trip.

        A synchronous PUBLISH costs a round trip each (~70 us of CPU and 130 us of wall time
        here); in one pipeline an emit costs ~30 us in a batch of four and ~15 us in large
        ones (docs/BENCHMARKS.md, issue 15's fourth round).
        Nothing is published if the block raises; if the pipeline fails, some of the messages
        may have gone out, so the caller retries them all (clients drop repeats by seq).
        """
        if getattr(self._local, "held", None) is not None:  # nested: the outer one publishes
            yield
            return
        held: list[Any] = []
        self._local.held = held
        try:
            yield
        finally:
            self._local.held = None
        if held:
            self._send(held)


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


def emitting_together() -> Any:
    """A block whose emits are published together, in order, when it ends (see `batch`)."""
    return _manager().batch()
