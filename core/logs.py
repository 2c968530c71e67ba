"""Structured logs: JSON in production, readable lines in development, with correlation ids."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# The ids that let one follow a notification from the API call through the worker to the emit.
# ContextVars, not thread-locals: eventlet and gevent give each greenlet its own context.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
task_id: ContextVar[str | None] = ContextVar("task_id", default=None)
notification_id: ContextVar[str | None] = ContextVar("notification_id", default=None)
CONTEXT = {"request_id": request_id, "task_id": task_id, "notification_id": notification_id}

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(ids)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d"


class ContextFilter(logging.Filter):
    """Copy the current correlation ids onto each record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add request_id, task_id and notification_id, and a short `ids` text for humans."""
        parts = []
        for name, var in CONTEXT.items():
            value = getattr(record, name, None) or var.get()
            setattr(record, name, value)
            if value:
                parts.append(f"{name.split('_')[0]}={value}")
        record.ids = f" [{' '.join(parts)}]" if parts else ""
        return True


class IdsJsonFormatter(JsonFormatter):
    """JSON lines that leave out ids that are not set, and the human-only `ids` text."""

    def process_log_record(self, log_data: dict[str, object]) -> dict[str, object]:
        """Drop empty correlation ids so every line carries only what applies to it."""
        log_data.pop("ids", None)
        for name in CONTEXT:
            if not log_data.get(name):
                log_data.pop(name, None)
        return log_data


def wants_json(log_format: str, app_env: str) -> bool:
    """JSON when asked for, or by default in production; readable lines otherwise."""
    return log_format == "json" or (log_format == "auto" and app_env == "production")


def configure(log_format: str = "auto", app_env: str = "development", level: str = "INFO") -> None:
    """Send every logger's records to stderr in the chosen format, with correlation ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if wants_json(log_format, app_env):
        handler.setFormatter(
            IdsJsonFormatter(
                JSON_FIELDS,
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                static_fields={"env": app_env},
                reserved_attrs=[*RESERVED_ATTRS, "ids"],
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Set correlation ids for the code inside the block, restoring the previous ones after."""
    tokens = [(CONTEXT[name], CONTEXT[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
