"""Names shared by the web tier, which joins rooms, and the worker, which emits to them."""

from __future__ import annotations

# The Redis pub/sub channel of the Socket.IO message queue (Flask-SocketIO's default name).
SOCKETIO_CHANNEL = "flask-socketio"
USER_ROOM_PREFIX = "user:"


def user_room(user_id: str) -> str:
    """The private room every socket of one user joins."""
    return f"{USER_ROOM_PREFIX}{user_id}"
