"""The health check."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy import text

from core.db import get_engine

blp = Blueprint("health", __name__, description="Health")


@blp.route("/health", methods=["GET"])
def health() -> tuple[dict[str, Any], int]:
    """Database, Redis and live connection counts across every web process."""
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
    if body["database"] != "ok" or body["redis"] != "ok":
        body["status"] = "degraded"
    return body, 200 if body["database"] == "ok" else 503
