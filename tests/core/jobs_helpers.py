"""Helpers for the scheduled-job tests: instants in UTC, frozen time, backdated rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import time_machine
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.settings import Settings


def at(text: str) -> datetime:
    """An aware UTC instant from "YYYY-MM-DD HH:MM[:SS]"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def frozen(when: datetime | str) -> time_machine.travel:
    """Stop the clock at `when` (UTC) for a `with` block: utcnow() returns exactly it."""
    return time_machine.travel(at(when) if isinstance(when, str) else when, tick=False)


def with_settings(settings: Settings, **overrides: Any) -> Settings:
    """A copy of the test settings with some values replaced."""
    return settings.model_copy(update=overrides)


def backdate(session: Session, model: Any, row_id: str, created_at: datetime) -> None:
    """Move a row's created_at (e.g. a withdrawal made 25 hours ago)."""
    session.execute(update(model).where(model.id == row_id).values(created_at=created_at))
