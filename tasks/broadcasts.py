"""The thin task that fans an admin broadcast out to every user."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from celeryconfig import TASK_RETRY_POLICY
from core import probes
from core.db import session_scope
from core.presence import connected_user_ids
from core.services import broadcasts
from worker.celery_app import app

# A retry resumes after the last stored batch (the broadcast's cursor).
TRANSIENT = (OSError, ConnectionError, TimeoutError, OperationalError, SoftTimeLimitExceeded)


@app.task(name="broadcasts.fan_out", autoretry_for=TRANSIENT, **TASK_RETRY_POLICY)
def fan_out(broadcast_id: str) -> dict[str, int]:
    """Store the broadcast for every user, batch by batch, and push it to the connected ones."""
    return broadcasts.fan_out(
        session_scope, broadcast_id, lambda: connected_user_ids(probes.client())
    )
