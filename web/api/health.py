"""The health check."""

from __future__ import annotations

import hmac
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint
from sqlalchemy import text

from core.db import get_engine, session_scope
from core.models import User
from core.services import tokens
from core.services.jobs.status import health_summary
from core.settings import Settings
from web.auth import bearer_token
from web.deep_health import deep_report
from web.revocation import ensure_live

blp = Blueprint("health", __name__, description="Health")


DEEP_PARAM = {
    "in": "query",
    "name": "deep",
    "schema": {"type": "integer", "enum": [0, 1]},
    "description": (
        "1: also prove the message-queue listener, a worker (canary task) and beat; only with "
        "an admin's bearer token or the X-Health-Token header, otherwise the cheap answer"
    ),
}


@blp.route("/health", methods=["GET"])
@blp.doc(parameters=[DEEP_PARAM])
def health() -> tuple[dict[str, Any], int]:
    """Database, Redis, live connection counts across every web process, scheduled jobs."""
    settings = current_app.config["SETTINGS"]
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
    # Limits keep holding while Redis is away, but each process then counts alone.
    body["rate_limits"] = (
        ("ok" if body["redis"] == "ok" else "fallback: counted per process (Redis unreachable)")
        if settings.RATE_LIMIT_ENABLED
        else "disabled: RATE_LIMIT_ENABLED=false"
    )
    body["jobs"] = _jobs() if body["database"] == "ok" else "unknown: database down"
    if body["database"] != "ok" or body["redis"] != "ok":
        body["status"] = "degraded"
    code = 200 if body["database"] == "ok" else 503
    if request.args.get("deep") in ("1", "true"):
        if not _may_go_deep(settings):
            # Each deep check sends canary tasks and waits on them: not for anyone to trigger.
            body["deep"] = "skipped: needs an admin's token or the X-Health-Token header"
            return body, code
        report, healthy = deep_report(settings)
        body.update(report)
        if not healthy:
            body["status"], code = "fail", 503
    return body, code


def _may_go_deep(settings: Settings) -> bool:
    """Whether the caller holds HEALTH_TOKEN or an admin's access token."""
    given = request.headers.get("X-Health-Token", "")
    if settings.HEALTH_TOKEN and hmac.compare_digest(
        given.encode(), settings.HEALTH_TOKEN.encode()
    ):
        return True
    try:
        claims = tokens.verify(settings, bearer_token(), "access")
        ensure_live(claims)
        with session_scope() as session:
            user = session.get(User, claims.user_id)
            return user is not None and user.role == "admin"
    except Exception:
        # An invalid token, or a database that is down (the cheap answer says so).
        return False


def _jobs() -> dict[str, Any] | str:
    """Each scheduled job's last run and whether it is overdue; an error never fails /health."""
    try:
        with session_scope() as session:
            return health_summary(session, current_app.config["SETTINGS"])
    except Exception as exc:
        return f"error: {type(exc).__name__}"
