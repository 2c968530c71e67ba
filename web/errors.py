"""Every error leaves as `{"error": {"code", "message", "details"?}}` with its status."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from core import metrics
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
    if status == 429:
        metrics.count("rate_limited", endpoint=request.endpoint or "unknown")
        # Flask-Limiter's after_request hook adds Retry-After and the X-RateLimit-* headers.
        return error_body(429, "rate_limited", f"too many requests: {exc.description}")
    code = READABLE_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    return error_body(status, code, exc.description or exc.name or "error")


# Codes that read better than werkzeug's names ("request_entity_too_large").
READABLE_CODES = {413: "payload_too_large"}


def _domain_error(exc: DomainError) -> ResponseReturnValue:
    """Refusals raised by the services."""
    return error_body(exc.status, exc.code, exc.message, exc.details)


def internal_error(exc: Exception) -> ResponseReturnValue:
    """Anything else is our bug: log it whole, tell the client little."""
    log.exception("unhandled error", exc_info=exc)
    return error_body(500, "internal_error", "internal server error")


NUL = "\x00"
NUL_MESSAGE = "must not contain NUL (\\u0000) characters"


def _has_nul(value: Any) -> bool:
    """Whether a string, or any key or value inside a JSON document, holds a NUL character."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def refuse_nul_characters() -> ResponseReturnValue | None:
    """Refuse NUL in the path, the query or a JSON body with a 422, before any view runs.

    PostgreSQL text can neither store nor compare NUL: psycopg2 raises ValueError on any query
    that carries one (an id in the path, an email to log in with, a title...), which was a 500.
    """
    invalid: dict[str, Any] = {}
    if NUL in request.path:
        invalid["path"] = [NUL_MESSAGE]
    query = {
        key.replace(NUL, "\\u0000"): [NUL_MESSAGE]
        for key, value in request.args.items(multi=True)
        if _has_nul(key) or _has_nul(value)
    }
    if query:
        invalid["query"] = query
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:
        # json nests as deep as the body goes: a deeply nested array must be a 400, not a 500.
        return error_body(400, "invalid_json", "the JSON body is nested too deeply")
    if isinstance(body, dict):
        fields = {
            str(key).replace(NUL, "\\u0000"): [NUL_MESSAGE]
            for key, value in body.items()
            if _has_nul(key) or _has_nul(value)
        }
        if fields:
            invalid["json"] = fields
    elif _has_nul(body):
        invalid["json"] = [NUL_MESSAGE]
    if not invalid:
        return None
    return error_body(422, "validation_error", f"invalid request: {_describe(invalid)}", invalid)


def register_error_handlers(app: Flask) -> None:
    """Install the handlers and the NUL guard; call after the Api so ours win over smorest's."""
    app.before_request(refuse_nul_characters)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(Exception, internal_error)
