"""Names of the Socket.IO rooms that the web tier joins and the worker emits to."""

from __future__ import annotations


def user_room(user_id: str) -> str:
    """The private room every socket of one user joins."""
    return f"user:{user_id}"
