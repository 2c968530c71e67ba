"""When the message-queue listener lets the writers run: once one falls behind, or per slice."""

from __future__ import annotations

from typing import Any

import pytest

from web import socketio_manager
from web.socketio_manager import CatchUpRedisManager


class Server:
    """Just enough of a Socket.IO server for the listener's emits: it counts the yields."""

    def __init__(self) -> None:
        self.yields = 0

    def sleep(self, seconds: float) -> None:
        """A yield to the other green threads."""
        self.yields += 1


@pytest.fixture
def manager(monkeypatch: pytest.MonkeyPatch) -> tuple[CatchUpRedisManager, Server]:
    """A listener whose emits go nowhere, on a clock that only moves when told."""
    manager = CatchUpRedisManager("redis://127.0.0.1:1/0", write_only=True)
    server = Server()
    manager.server = server  # type: ignore[assignment]
    redis_manager = socketio_manager.socketio.RedisManager
    monkeypatch.setattr(redis_manager, "_handle_emit", lambda self, message: None)
    clock = [1000.0]
    monkeypatch.setattr(socketio_manager.time, "monotonic", lambda: clock[0])
    manager.clock = clock  # type: ignore[attr-defined]
    return manager, server


def _emit(manager: CatchUpRedisManager, count: int) -> None:
    message: dict[str, Any] = {"event": "notification", "room": "user:1", "data": [{}]}
    for _ in range(count):
        manager._handle_emit(message)


def test_a_burst_is_not_broken_up_message_by_message(
    manager: tuple[CatchUpRedisManager, Server],
) -> None:
    """Messages handled within one slice share one yield (B2's fan-out: one wake per batch)."""
    listener, server = manager
    _emit(listener, 1)
    assert server.yields == 1  # the first slice started long ago
    _emit(listener, 50)
    assert server.yields == 1
    listener.clock[0] += 2 * socketio_manager.LISTENER_SLICE_SECONDS  # type: ignore[attr-defined]
    _emit(listener, 2)
    assert server.yields == 2


def test_a_writer_behind_gets_its_turn_after_the_message_in_hand(
    manager: tuple[CatchUpRedisManager, Server],
) -> None:
    """The guard's report of a long queue makes the listener yield at once, and only once."""
    listener, server = manager
    _emit(listener, 1)
    listener.writers_behind()
    _emit(listener, 3)
    assert server.yields == 2
