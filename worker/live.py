"""Live delivery: turn a claimed notification into a Socket.IO emit."""

from __future__ import annotations

from typing import Any

from core.services.deliveries import Claimed
from core.services.notifications import to_event
from worker.emitter import emit_to_user
from worker.metering import record_emit, record_emit_error


def send_live(item: Claimed) -> dict[str, Any] | None:
    """Emit the notification to its user's room; nothing extra to store."""
    try:
        emit_to_user(item.user.id, "notification", to_event(item.notification))
    except Exception as exc:
        record_emit_error(item.notification, exc)
        raise
    record_emit(item.notification, item.user.id)
    return None
