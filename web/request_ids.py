"""A request id on every web log line and response, handed on to the tasks a request enqueues."""

from __future__ import annotations

import re
import uuid
from typing import Any

from celery.signals import before_task_publish
from flask import Flask, Response, g, request

from core import logs

HEADER = "X-Request-ID"
# A proxy's id is kept when it looks like one; anything else could forge or flood log lines.
ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def _bind() -> None:
    """Take the caller's X-Request-ID if sane, else make one, and bind it for logging."""
    given = request.headers.get(HEADER, "")
    g.request_id = given if ACCEPTABLE.match(given) else uuid.uuid4().hex
    g.request_id_token = logs.request_id.set(g.request_id)


def _answer(response: Response) -> Response:
    """Tell the caller the id to quote when something went wrong."""
    if "request_id" in g:
        response.headers[HEADER] = g.request_id
    return response


def _unbind(_: BaseException | None) -> None:
    """Forget the id, so a reused greenlet or thread never logs a stale one."""
    token = g.pop("request_id_token", None)
    if token is not None:
        try:
            logs.request_id.reset(token)
        except ValueError:  # created in another context: clearing is all that matters
            logs.request_id.set(None)


@before_task_publish.connect
def _hand_on(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Put the current request id into the task's message headers for the worker's logs."""
    current = logs.request_id.get()
    if current and headers is not None:
        headers.setdefault("request_id", current)


def init_request_ids(app: Flask) -> None:
    """Install the request-id hooks on the app."""
    app.before_request(_bind)
    app.after_request(_answer)
    app.teardown_request(_unbind)
