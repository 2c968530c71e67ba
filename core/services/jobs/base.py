"""What every job receives, and the dialect-aware INSERT the jobs share."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.settings import Settings

# A unit of work: `core.db.session_scope` in the processes, the test database's in unit tests.
Scope = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class JobContext:
    """One run: its period (the scheduled one, or the current one for a manual run) and time."""

    name: str
    period: datetime
    period_end: datetime
    now: datetime
    trigger: str
    settings: Settings

    @property
    def manual(self) -> bool:
        """Whether someone asked for this run (run-job) rather than the schedule."""
        return self.trigger == "manual"


# The work of a job: does it (in as many transactions as it likes) and returns its counts.
JobWork = Callable[[Scope, JobContext], dict[str, Any]]


def insert_for(session: Session, table: Any) -> Any:
    """An INSERT with `on_conflict_do_nothing/update`, for the session's backend."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)
