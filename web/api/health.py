"""The health check."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint
from sqlalchemy import text

from core.db import get_engine, session_scope
from core.services.jobs.status import health_summary
from web.deep_health import deep_report

blp = Blueprint("health", __name__, description="Health")


DEEP_PARAM = {
    "in": "query",
    "name": "deep",
    "schema": {"type": "integer", "enum": [0, 1]},
    "description": "1: also prove the message-queue listener, a worker (canary task) and beat",
}


@blp.route("/health", methods=["GET"])
@blp.doc(parameters=[DEEP_PARAM])
def health() -> tuple[dict[str, Any], int]:
    """Database, Redis, live connection counts across every web process, scheduled jobs."""
    body: dict[str, Any] = {"status": "ok"}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        body["database"] = "ok"
    except Exception as exc:
        body["database"] = f"error: {type(exc).__name__}"
    presence = current_app.extensions["presence"]
    try:
        presence.client.ping()
        body["redis"] = "ok"
        body["websocket"] = presence.counts()
    except Exception as exc:
        body["redis"] = f"error: {type(exc).__name__}"
        local = presence.local
        body["websocket"] = {"connections": len(local), "users": len(set(local.values()))}
    body["jobs"] = _jobs() if body["database"] == "ok" else "unknown: database down"
    if body["database"] != "ok" or body["redis"] != "ok":
        body["status"] = "degraded"
    code = 200 if body["database"] == "ok" else 503
    if request.args.get("deep") in ("1", "true"):
        report, healthy = deep_report(current_app.config["SETTINGS"])
        body.update(report)
        if not healthy:
            body["status"], code = "fail", 503
    return body, code


def _jobs() -> dict[str, Any] | str:
    """Each scheduled job's last run and whether it is overdue; an error never fails /health."""
    try:
        with session_scope() as session:
            return health_summary(session, current_app.config["SETTINGS"])
    except Exception as exc:
        return f"error: {type(exc).__name__}"
