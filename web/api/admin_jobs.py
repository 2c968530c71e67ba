"""Admin views of the scheduled jobs: platform statistics and each job's last run."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from core.db import session_scope
from core.models.base import utcnow
from core.services import stats
from core.services.errors import NotFound
from core.services.jobs.status import job_statuses
from web.auth import actor, auth_required
from web.schemas_jobs import JobsOut, StatsOut, StatsQuery

blp = Blueprint("admin_jobs", __name__, url_prefix="/api/admin", description="Admin")


@blp.route("/stats", methods=["GET"])
@auth_required
@blp.arguments(StatsQuery(), location="query")
@blp.response(200, StatsOut)
@blp.doc(security=[{"bearer": []}])
def platform_stats(query: dict[str, Any]) -> dict[str, Any]:
    """The latest day's platform statistics, and with ?days=N the last N days."""
    with session_scope() as session:
        actor(session, "admin")
        row = stats.latest(session)
        if row is None:
            raise NotFound(
                "no platform statistics yet: the daily job has not run",
                details={"run": "flask --app wsgi run-job update_platform_stats"},
            )
        body = stats.to_dict(row)
        if "days" in query:
            today = utcnow().date()
            body["series"] = [stats.to_dict(r) for r in stats.series(session, query["days"], today)]
        return body


@blp.route("/jobs", methods=["GET"])
@auth_required
@blp.response(200, JobsOut)
@blp.doc(security=[{"bearer": []}])
def jobs() -> dict[str, Any]:
    """Every scheduled job: its schedule, last run (start, duration, outcome, counts)."""
    with session_scope() as session:
        actor(session, "admin")
        return {"jobs": job_statuses(session, current_app.config["SETTINGS"])}
