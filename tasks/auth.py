"""The thin task behind a password-reset request, so the request answers alike for any address."""

from __future__ import annotations

from celeryconfig import TASK_RETRY_POLICY
from core.db import session_scope
from core.services import password_reset
from tasks.notifications import TRANSIENT
from worker.celery_app import app


@app.task(name="auth.request_password_reset", autoretry_for=TRANSIENT, **TASK_RETRY_POLICY)
def request_password_reset(email: str) -> bool:
    """Queue the reset email if the address is an account's (the web never looks it up)."""
    with session_scope() as session:
        return password_reset.request(session, email)
