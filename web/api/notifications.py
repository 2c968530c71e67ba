"""The notification inbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_smorest import Blueprint

from core.db import session_scope
from core.models import Notification
from core.services import notifications
from web.auth import actor, auth_required
from web.schemas import CountOut, NotificationDetailOut, NotificationOut, NotificationQuery

blp = Blueprint("notifications", __name__, url_prefix="/api/notifications", description="Inbox")
SECURITY = [{"bearer": []}]


@blp.route("", methods=["GET"])
@auth_required
@blp.arguments(NotificationQuery(), location="query")
@blp.response(200, NotificationOut(many=True))
@blp.doc(security=SECURITY)
def inbox(query: dict[str, Any]) -> Sequence[Notification]:
    """Newest first; with `after_seq=N`, everything after seq N, oldest first."""
    with session_scope() as session:
        user = actor(session)
        if "after_seq" in query:
            return notifications.list_after(session, user.id, query["after_seq"], query["limit"])
        return notifications.list_inbox(
            session,
            user.id,
            unread_only=query["unread_only"],
            limit=query["limit"],
            before_seq=query.get("before"),
        )


@blp.route("/unread-count", methods=["GET"])
@auth_required
@blp.response(200, CountOut)
@blp.doc(security=SECURITY)
def unread() -> dict[str, int]:
    """How many notifications are unread."""
    with session_scope() as session:
        return {"count": notifications.unread_count(session, actor(session).id)}


@blp.route("/<notification_id>", methods=["GET"])
@auth_required
@blp.response(200, NotificationDetailOut)
@blp.doc(security=SECURITY)
def one(notification_id: str) -> Notification:
    """One notification with its delivery per channel: status, attempts, last error, times."""
    with session_scope() as session:
        return notifications.get_own(session, actor(session).id, notification_id)


@blp.route("/<notification_id>/read", methods=["POST"])
@auth_required
@blp.response(200, NotificationOut)
@blp.doc(security=SECURITY)
def read_one(notification_id: str) -> Notification:
    """Mark one notification read."""
    with session_scope() as session:
        return notifications.mark_read(session, actor(session).id, notification_id)


@blp.route("/read-all", methods=["POST"])
@auth_required
@blp.response(200, CountOut)
@blp.doc(security=SECURITY)
def read_all() -> dict[str, int]:
    """Mark every notification read; returns how many changed."""
    with session_scope() as session:
        return {"count": notifications.mark_all_read(session, actor(session).id)}
