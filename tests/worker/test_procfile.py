"""The Procfile's workers: every queue served, and live pushes in a process of their own."""

from __future__ import annotations

from honcho.environ import parse_procfile

import celeryconfig
from tests.support.paths import REPO_ROOT


def _worker_queues() -> dict[str, set[str]]:
    """Each Celery worker process type and the queues its -Q names."""
    processes = parse_procfile((REPO_ROOT / "Procfile").read_text()).processes
    workers = {}
    for name, command in processes.items():
        words = command.split()
        if words[:1] == ["celery"] and "worker" in words:
            workers[name] = set(words[words.index("-Q") + 1].split(","))
    return workers


def test_every_queue_has_a_worker() -> None:
    served = set().union(*_worker_queues().values())
    assert served == {queue.name for queue in celeryconfig.task_queues}


def test_live_pushes_wait_behind_nothing() -> None:
    """The realtime queue's worker serves nothing else, so email or jobs never delay it."""
    [live] = [queues for queues in _worker_queues().values() if "realtime" in queues]
    assert live == {"realtime"}
