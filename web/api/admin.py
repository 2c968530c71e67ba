"""Admin actions."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.db import session_scope
from core.services import notifications
from web.auth import actor, auth_required
from web.schemas import BroadcastIn, BroadcastOut

blp = Blueprint("admin", __name__, url_prefix="/api/admin", description="Admin")


@blp.route("/broadcast", methods=["POST"])
@auth_required
@blp.arguments(BroadcastIn)
@blp.response(202, BroadcastOut)
@blp.doc(security=[{"bearer": []}])
def broadcast(body: dict[str, Any]) -> dict[str, int]:
    """Store a message for every user and push it to everyone connected."""
    with session_scope() as session:
        actor(session, "admin")
        return {"recipients": notifications.broadcast(session, body["title"], body["message"])}
