"""Log lines carry the correlation ids: JSON in production, readable text in development."""

from __future__ import annotations

import json
import logging

import pytest

from core import logs


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_production_logs_json_with_the_ids_in_force(restore_root_logging, capsys):
    logs.configure("auto", "production")
    with logs.bound(request_id="req-1", task_id="task-2"):
        logging.getLogger("test").info("emitted", extra={"notification_id": "n-3"})

    record = json.loads(_line(capsys))

    assert record["message"] == "emitted" and record["level"] == "INFO"
    assert (record["request_id"], record["task_id"], record["notification_id"]) == (
        "req-1",
        "task-2",
        "n-3",
    )


def test_development_logs_text_and_leaves_out_unset_ids(restore_root_logging, capsys):
    logs.configure("auto", "development")
    with logs.bound(task_id="task-2"):
        logging.getLogger("test").info("hello")
    logging.getLogger("test").info("after")

    err = capsys.readouterr().err.strip().splitlines()
    assert "test [task=task-2]: hello" in err[-2]
    assert err[-1].endswith("test: after")
