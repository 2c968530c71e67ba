"""The job tasks' retry: transient failures retry for the same period, never past its end."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from core.services import dispatch
from tests.core.jobs_helpers import at, frozen


class Retry(Exception):
    """Stands for celery.exceptions.Retry."""


class FakeTask:
    """Just what `_run` uses of a bound Celery task."""

    def __init__(self, retries: int = 0) -> None:
        self.request = SimpleNamespace(retries=retries)
        self.retried: dict[str, Any] | None = None

    def retry(self, **options: Any) -> Retry:
        self.retried = options
        return Retry()


@pytest.fixture
def maintenance(monkeypatch) -> Iterator[Any]:
    """tasks.maintenance, without the worker's dispatcher leaking into other tests."""
    monkeypatch.delenv("JOB_INTERVALS", raising=False)
    from tasks import maintenance

    dispatch.set_dispatcher(None)
    yield maintenance


def failing(exc: Exception):
    def run_job(*_: Any, **__: Any) -> Any:
        raise exc

    return run_job


def test_a_transient_failure_retries_the_same_period_until_its_end(maintenance, monkeypatch):
    monkeypatch.setattr(maintenance.runner, "run_job", failing(ConnectionError("db away")))
    task = FakeTask(retries=2)

    with frozen("2026-03-02 00:00:03"), pytest.raises(Retry):
        maintenance._run(task, "update_platform_stats", None, "beat")

    assert task.retried is not None
    assert task.retried["kwargs"] == {"period": "2026-03-02T00:00:00+00:00", "trigger": "retry"}
    assert task.retried["expires"] == at("2026-03-03 00:00")
    assert 0 <= task.retried["countdown"] <= 60


def test_no_retry_that_would_land_after_the_period(maintenance, monkeypatch):
    monkeypatch.setattr(maintenance.runner, "run_job", failing(ConnectionError("db away")))
    # The backoff's jitter made deterministic: the cap, 60 s.
    monkeypatch.setattr(maintenance, "get_exponential_backoff_interval", lambda **_: 60)
    task = FakeTask(retries=8)

    with frozen("2026-03-02 23:59:30"), pytest.raises(ConnectionError):
        maintenance._run(task, "update_platform_stats", "2026-03-02T00:00:00+00:00", "retry")

    assert task.retried is None


def test_a_permanent_error_is_not_retried(maintenance, monkeypatch):
    monkeypatch.setattr(maintenance.runner, "run_job", failing(ValueError("bug")))
    task = FakeTask()

    with frozen("2026-03-02 00:00:03"), pytest.raises(ValueError):
        maintenance._run(task, "update_platform_stats", None, "beat")

    assert task.retried is None
