"""Disconnects in time proportional to the socket's own rooms, not to every room there is."""

from __future__ import annotations

from typing import Any


# python-socketio's BaseManager.basic_disconnect copies the namespace's whole room table and
# tests the socket against every room in it. Here every socket has its own sid room and every
# user a private room, so one disconnect costs O(sockets): at 5,000 sockets a burst of
# departures kept the web process busy for ~10 s, every emit waiting behind it
# (docs/BENCHMARKS.md). Node's socket.io adapter keeps each socket's rooms for this reason.
class RoomIndexMixin:
    """A python-socketio manager mixin that keeps each socket's rooms and leaves only those."""

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[Any]] = {}

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        """Enter the room, and remember it among the socket's rooms."""
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Leave the room, and forget it among the socket's rooms."""
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """BaseManager.basic_disconnect, leaving the socket's own rooms instead of scanning all."""
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if namespace in pending and sid in pending[namespace]:
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        """The rooms a socket is in (its sid room included, as BaseManager says)."""
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]
