"""Rate limits on the REST API: Flask-Limiter on Redis, so every web process shares the counts.

Where each limit applies:
- login: failed attempts per account (the email asked for) and every attempt per client
  address, so an attacker rotating accounts and one rotating addresses are both slowed;
- registration and token refresh: per client address;
- every other write under /api (POST, PATCH, PUT, DELETE): per signed-in user, or per client
  address for anonymous calls (an application-wide limit: one count across every route).

While Redis is unreachable the limits still hold, per process, in memory (Flask-Limiter's
fallback), and `/health` says so: a Redis outage neither opens the gates nor fails the requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from core.services import tokens
from core.services.errors import Unauthorized
from core.settings import Settings
from web.auth import bearer_token
from web.websocket_compression import WSGIApp

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Routes with limits of their own (login, registration, refresh) and webhooks signed by their
# providers are not counted as a user's writes.
OWN_LIMITS_PREFIXES = ("/api/auth/", "/api/webhooks/", "/api/integrations/")


def client_address() -> str:
    """The caller's address: the peer, or what TRUSTED_PROXY_COUNT proxies say (ProxyFix)."""
    return request.remote_addr or "unknown"


def request_origin() -> tuple[str | None, str | None]:
    """Where this request comes from: the client address and its User-Agent."""
    return client_address(), request.headers.get("User-Agent")


def writer_key() -> str:
    """The signed-in user making a write, or the client address of an anonymous one."""
    if "limit_user_id" not in g:
        try:
            claims = tokens.verify(current_app.config["SETTINGS"], bearer_token(), "access")
            g.limit_user_id = claims.user_id
        except Unauthorized:
            g.limit_user_id = None
    return f"user:{g.limit_user_id}" if g.limit_user_id else f"address:{client_address()}"


def login_account_key() -> str:
    """The account a login names, normalised as registration stores emails."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return f"account:{email.strip().lower()}" if isinstance(email, str) else "account:?"


def login_failed(response: Response) -> bool:
    """Whether a login was refused for its credentials: only those count against the account."""
    return response.status_code in (401, 403)


def _not_a_counted_write() -> bool:
    """Reads, preflights and routes with limits of their own skip the per-user write limit."""
    return (
        request.method not in WRITE_METHODS
        or not request.path.startswith("/api/")
        or request.path.startswith(OWN_LIMITS_PREFIXES)
    )


def setting(name: str) -> Callable[[], str]:
    """A limit read from the settings at request time (the decorators run at import)."""
    return lambda: getattr(current_app.config["SETTINGS"], name)


limiter = Limiter(
    key_func=writer_key,
    application_limits=[setting("RATE_LIMIT_WRITES")],
    application_limits_exempt_when=_not_a_counted_write,
)


def limiter_config(settings: Settings) -> dict[str, Any]:
    """Flask-Limiter's settings, from ours."""
    return {
        "RATELIMIT_ENABLED": settings.RATE_LIMIT_ENABLED,
        "RATELIMIT_STORAGE_URI": settings.redis_url,
        # Short timeouts: a request never waits long on a limiter whose Redis is away.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1},
        # Two counters per key and window: smooth at the window's edge, cheap in Redis.
        "RATELIMIT_STRATEGY": "sliding-window-counter",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "ratelimit",
    }


def refuse_oversized_body() -> None:
    """Answer 413 from the declared length alone, before anything reads or parses the body."""
    length = request.content_length
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if length is not None and length > limit:
        raise RequestEntityTooLarge(f"the request body is {length} bytes; the limit is {limit}")
    # A chunked body declares no length, and werkzeug silently truncates it at the cap (which
    # then reads as invalid JSON): read it up to the cap and refuse a full one.
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if length is None and chunked and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge(f"the request body is over the limit of {limit} bytes")


def _retry_after_only_when_refused(response: Response) -> Response:
    """Drop the Retry-After Flask-Limiter puts on every response, where it means nothing."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def init_limits(app: Flask, settings: Settings) -> None:
    """Cap request bodies, then bind the limiter with the settings' storage and switches."""
    # A chunked body, which declares no length, is cut off by werkzeug at this many bytes.
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_REQUEST_BYTES
    # Before the limiter's hook and the NUL guard: the login limit's key and the guard read it.
    app.before_request(refuse_oversized_body)
    # Registered first, so it runs after the limiter's header hook (Flask runs them in reverse).
    app.after_request(_retry_after_only_when_refused)
    app.config.update(limiter_config(settings))
    limiter.init_app(app)


def with_trusted_proxies(app: WSGIApp, count: int) -> WSGIApp:
    """Take the client address from X-Forwarded-For as `count` trusted proxies wrote it."""
    if count <= 0:
        return app
    return ProxyFix(app, x_for=count, x_proto=count)  # type: ignore[arg-type]
