"""Names shared by the web tier, which joins rooms, and the worker, which emits to them."""

from __future__ import annotations

# The Redis pub/sub channel of the Socket.IO message queue (Flask-SocketIO's default name).
SOCKETIO_CHANNEL = "flask-socketio"
USER_ROOM_PREFIX = "user:"


def user_room(user_id: str) -> str:
    """The private room every socket of one user joins."""
    return f"{USER_ROOM_PREFIX}{user_id}"


# Every socket of one login also joins this room, so ending the login reaches them all.
LOGIN_ROOM_PREFIX = "login:"
# The event sent to a login's sockets just before they are dropped.
SESSION_REVOKED_EVENT = "session_revoked"


def login_room(login_id: str) -> str:
    """The room of every socket opened with one login's access tokens."""
    return f"{LOGIN_ROOM_PREFIX}{login_id}"
