"""RoomIndexMixin leaves the same rooms as python-socketio's own manager, without scanning."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import socketio

from web.room_index import RoomIndexMixin


class IndexedManager(RoomIndexMixin, socketio.Manager):
    """The plain in-memory manager with the room index."""


def _server() -> Any:
    """Just enough of a server for a manager: sid generation."""
    ids = itertools.count(1)
    return SimpleNamespace(
        eio=SimpleNamespace(generate_id=lambda: f"sid{next(ids)}"),
        packet_class=socketio.packet.Packet,
    )


def _play(manager: socketio.Manager) -> dict[str, Any]:
    """Connect sockets, move them between rooms, disconnect some; return the room table."""
    manager.set_server(_server())
    sids = [manager.connect(f"eio{i}", "/") for i in range(6)]
    for i, sid in enumerate(sids):
        manager.enter_room(sid, "/", f"user:{i % 3}")
        manager.enter_room(sid, "/", "everyone")
    manager.leave_room(sids[0], "/", "everyone")
    manager.close_room("user:2", "/")
    for sid in (sids[1], sids[4]):
        manager.pre_disconnect(sid, "/")
        manager.disconnect(sid, "/")
    table = {ns: {r: dict(m) for r, m in rooms.items()} for ns, rooms in manager.rooms.items()}
    return {
        "rooms": table,
        "of_0": sorted(map(str, manager.get_rooms(sids[0], "/"))),
        "of_3": sorted(map(str, manager.get_rooms(sids[3], "/"))),
        "pending": (manager.pending_connect, manager.pending_disconnect),
    }


def test_same_rooms_as_python_socketio() -> None:
    """Every room, member and pending list ends up as the library's own manager leaves it."""
    assert _play(IndexedManager()) == _play(socketio.Manager())


def test_disconnect_forgets_the_socket() -> None:
    """A disconnected socket leaves nothing behind in the index."""
    manager = IndexedManager()
    manager.set_server(_server())
    sid = manager.connect("eio1", "/")
    manager.enter_room(sid, "/", "user:1")
    manager.pre_disconnect(sid, "/")
    manager.disconnect(sid, "/")
    assert manager._rooms_of == {}
    assert manager.rooms == {}
