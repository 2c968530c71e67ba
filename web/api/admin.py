"""Admin actions."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from core.db import on_commit, session_scope
from core.models import Broadcast
from core.services import audit, broadcasts
from web.auth import actor, auth_required
from web.limits import request_origin
from web.schemas import AuditPageOut, AuditQuery, BroadcastIn, BroadcastOut

blp = Blueprint("admin", __name__, url_prefix="/api/admin", description="Admin")


@blp.route("/broadcast", methods=["POST"])
@auth_required
@blp.arguments(BroadcastIn())
@blp.response(202, BroadcastOut)
@blp.doc(security=[{"bearer": []}])
def broadcast(body: dict[str, Any]) -> Broadcast:
    """Queue a message for every user: a worker stores it for each and pushes it to the connected.

    Answers at once with the broadcast's id; its progress is at /api/admin/broadcasts/<id>.
    """
    broker = current_app.extensions["broker"]
    with session_scope() as session:
        admin = actor(session, "admin")
        item = broadcasts.create(session, admin, body["title"], body["message"])
        audit.record(
            session, admin, "broadcast.create", "broadcast", item.id, request_origin(),
            title=item.title, recipients=item.total,
        )  # fmt: skip
        # Only once it is committed; if Redis is down the sweeper sends it later.
        on_commit(session, lambda: broker.send("broadcasts.fan_out", [item.id]))
    return item


@blp.route("/audit", methods=["GET"])
@auth_required
@blp.arguments(AuditQuery(), location="query")
@blp.response(200, AuditPageOut)
@blp.doc(security=[{"bearer": []}])
def audit_trail(query: dict[str, Any]) -> dict[str, Any]:
    """Admin actions, newest first: who, what, when and from where (page with `before`)."""
    with session_scope() as session:
        actor(session, "admin")
        events = audit.page(session, query["limit"], query.get("before"))
        more = len(events) == query["limit"]
        return {"events": events, "next_before": events[-1].id if events and more else None}


@blp.route("/broadcasts/<broadcast_id>", methods=["GET"])
@auth_required
@blp.response(200, BroadcastOut)
@blp.doc(security=[{"bearer": []}])
def broadcast_progress(broadcast_id: str) -> Broadcast:
    """How far a broadcast's fan-out has gone."""
    with session_scope() as session:
        actor(session, "admin")
        return broadcasts.get(session, broadcast_id)
