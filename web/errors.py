"""Every error leaves as `{"error": {"code", "message", "details"?}}` with its status."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from core.services.errors import DomainError

log = logging.getLogger(__name__)


def error_body(status: int, code: str, message: str, details: Any = None) -> ResponseReturnValue:
    """A JSON error response in SPEC.md's shape."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return jsonify({"error": error}), status


def _describe(messages: dict[str, Any]) -> str:
    """One readable line naming each invalid field, from webargs' nested messages."""
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            parts.append(f"{prefix}: {' '.join(value)}")
        else:
            parts.append(f"{prefix}: {value}")

    for location, fields in messages.items():
        if isinstance(fields, dict):
            walk("", fields)
        else:
            walk(location, fields)
    return "; ".join(parts)


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    """Werkzeug and webargs errors (404, 405, invalid JSON, schema validation)."""
    status = exc.code or 500
    messages = (getattr(exc, "data", None) or {}).get("messages")
    if status == 400 and messages and "json" in messages and isinstance(messages["json"], list):
        return error_body(400, "invalid_json", "request body is not valid JSON")
    if messages:
        return error_body(
            422 if status == 422 else status,
            "validation_error",
            f"invalid request: {_describe(messages)}",
            messages,
        )
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_body(status, code, exc.description or exc.name or "error")


def _domain_error(exc: DomainError) -> ResponseReturnValue:
    """Refusals raised by the services."""
    return error_body(exc.status, exc.code, exc.message, exc.details)


def _unexpected(exc: Exception) -> ResponseReturnValue:
    """Anything else is our bug: log it whole, tell the client little."""
    log.exception("unhandled error", exc_info=exc)
    return error_body(500, "internal_error", "internal server error")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers; call after the Api so that ours win over flask-smorest's."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(Exception, _unexpected)
