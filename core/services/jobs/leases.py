"""The per-period lease: a unique (job, period) row, claimed once and taken over only if stale."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from core.models import JobRun
from core.models.base import new_id
from core.services.jobs.base import insert_for


def claim(
    session: Session,
    job: str,
    period: datetime | None,
    *,
    trigger: str,
    now: datetime,
    lease_seconds: int,
) -> JobRun | None:
    """Take the period's lease, or return None when it is done or held by a live run.

    The first claimer inserts the row; later ones may only take over a failed run (a retry)
    or a running one whose lease expired (its worker died). A manual run (no period) always
    gets a fresh row: NULL periods never collide.
    """
    lease_until = now + timedelta(seconds=lease_seconds)
    values = {
        "trigger": trigger,
        "status": "running",
        "started_at": now,
        "lease_until": lease_until,
        # Read at claim time: prefork children have their own pids.
        "worker": f"{socket.gethostname()}:{os.getpid()}"[:200],
    }
    if period is None:
        run = JobRun(job=job, period=None, attempts=1, **values)
        session.add(run)
        session.flush()
        return run
    table = JobRun.__table__
    inserted = session.execute(
        insert_for(session, table)
        .values(id=new_id(), job=job, period=period, attempts=1, **values)
        .on_conflict_do_nothing(index_elements=["job", "period"])
        .returning(table.c.id)
    ).scalar_one_or_none()
    if inserted is None:
        inserted = session.execute(
            update(JobRun)
            .where(
                JobRun.job == job,
                JobRun.period == period,
                or_(
                    JobRun.status == "failed",
                    and_(JobRun.status == "running", JobRun.lease_until < now),
                ),
            )
            .values(attempts=JobRun.attempts + 1, finished_at=None, error=None, **values)
            .returning(JobRun.id)
        ).scalar_one_or_none()
    if inserted is None:
        return None
    return session.scalars(
        select(JobRun).where(JobRun.id == inserted).execution_options(populate_existing=True)
    ).one()


def finish(
    session: Session,
    run: JobRun,
    *,
    status: str,
    now: datetime,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome, unless another claimer took the lease over meanwhile."""
    duration_ms = max(0, int((now - run.started_at).total_seconds() * 1000))
    done = session.execute(
        update(JobRun)
        .where(JobRun.id == run.id, JobRun.attempts == run.attempts, JobRun.status == "running")
        .values(
            status=status,
            finished_at=now,
            duration_ms=duration_ms,
            result=result,
            error=error[:4000] if error else None,
        )
    )
    return bool(done.rowcount)
