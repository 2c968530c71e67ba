"""Scheduled-job bookkeeping: one row per (job, period) is both the lease and the run record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, id_column

JOB_RUN_STATES = ("running", "succeeded", "failed")


class JobRun(Base):
    """One run of a scheduled job; unique per (job, period), so a period runs once.

    Manual runs (`run-job`) have no period: NULLs never collide in a unique constraint,
    on SQLite and PostgreSQL alike, so they are recorded without taking the period's lease.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job", "period", name="uq_job_runs_job_period"),
        Index("ix_job_runs_job_started_at", "job", "started_at"),
    )

    id: Mapped[str] = id_column()
    job: Mapped[str] = mapped_column(String(60), nullable=False)
    # The start of the schedule period this run belongs to (UTC); NULL for manual runs.
    period: Mapped[datetime | None]
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    started_at: Mapped[datetime] = mapped_column(nullable=False)
    # Until then the holder is presumed alive; a later claim may take over an expired lease.
    lease_until: Mapped[datetime] = mapped_column(nullable=False)
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # host:pid of the last claimer, to find its logs.
    worker: Mapped[str | None] = mapped_column(String(200))
