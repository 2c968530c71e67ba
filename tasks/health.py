"""The canary task of `/health?deep=1`: proof that a worker consumes a queue, end to end."""

from __future__ import annotations

from celery import Task

from core import probes
from worker.celery_app import app


@app.task(name="health.canary", bind=True, ignore_result=True)
def canary(self: Task, token: str, queue: str | None = None) -> None:
    """Write this worker's name under the token, where the web process is waiting for it."""
    probes.answer_canary(token, self.request.hostname, queue)
