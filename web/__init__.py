"""The Flask application factory of the web tier."""

from __future__ import annotations

import redis
from flask import Flask

from core import logs, metrics
from core.db import init_web_pool
from core.rooms import SOCKETIO_CHANNEL
from core.safety import refuse_unsafe_production
from core.services.dispatch import set_dispatcher
from core.settings import Settings, get_settings
from web.admission import init_admission, with_admission
from web.api import (
    admin,
    admin_jobs,
    auth,
    campaigns,
    channels,
    email_previews,
    health,
    integrations,
    messengers,
    notifications,
    users,
    webhooks,
    withdrawals,
)
from web.cli import register_commands
from web.dispatch import BrokerClient
from web.errors import register_error_handlers
from web.eventlet_input import with_eventlet_input
from web.extensions import api, cors, socketio
from web.inbox import bp as inbox_page
from web.limits import init_limits, with_trusted_proxies
from web.presence import Presence
from web.prometheus import bp as metrics_endpoint
from web.realtime import register_handlers
from web.request_ids import init_request_ids
from web.socket_guard import SocketGuard
from web.socketio_manager import CatchUpRedisManager
from web.unsubscribe import bp as unsubscribe_page
from web.websocket_compression import without_websocket_compression

BLUEPRINTS = (
    auth,
    users,
    messengers,
    channels,
    campaigns,
    withdrawals,
    notifications,
    admin,
    admin_jobs,
    health,
    webhooks,
    integrations,
    email_previews,
)


def _served_by_engineio() -> tuple[str, int]:
    """Never reached: the Socket.IO middleware serves /socket.io/ in front of Flask."""
    return "", 404


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web application: REST API, Socket.IO endpoint and CLI commands."""
    settings = settings or get_settings()
    refuse_unsafe_production(settings)
    logs.configure(settings.LOG_FORMAT, settings.APP_ENV, settings.LOG_LEVEL)
    metrics.activate()
    init_web_pool()
    app = Flask(__name__)
    init_request_ids(app)
    gate = init_admission(app, settings)
    init_limits(app, settings)
    # No SECRET_KEY: nothing uses Flask's cookie session (bearer tokens only), and without a
    # key Flask skips building a signing serializer for it on every request.
    app.config.update(
        SETTINGS=settings,
        API_TITLE="Ad marketplace notifications",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        # /api/docs: Swagger UI from the swagger-ui-dist npm package, served locally (web/inbox).
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/vendor/swagger-ui-dist/",
    )
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for module in BLUEPRINTS:
        api.register_blueprint(module.blp)
    app.register_blueprint(inbox_page)
    app.register_blueprint(unsubscribe_page)
    app.register_blueprint(metrics_endpoint)
    register_error_handlers(app)
    register_commands(app)
    # The REST API only: Socket.IO answers its own CORS from WEBSOCKET_CORS_ORIGINS. Bearer
    # tokens, no cookies, hence no credentials mode.
    cors.init_app(
        app,
        resources={r"/api/*": {"origins": settings.cors_origins}},
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["Retry-After", "X-Request-ID", "X-RateLimit-Limit",
                        "X-RateLimit-Remaining", "X-RateLimit-Reset"],
        max_age=600,
    )  # fmt: skip

    # Publishes run on the async mode's own background tasks (green threads under a server).
    broker = BrokerClient(
        spawn=lambda flush: socketio.start_background_task(flush), sleep=socketio.sleep
    )
    app.extensions["broker"] = broker
    set_dispatcher(broker.enqueue)
    origins = settings.WEBSOCKET_CORS_ORIGINS
    manager = CatchUpRedisManager(settings.redis_url, channel=SOCKETIO_CHANNEL)
    socketio.init_app(
        app,
        async_mode=settings.ASYNC_MODE,
        client_manager=manager,
        cors_allowed_origins="*" if origins == ["*"] else origins,
        # Larger frames are refused by the websocket server before they are read whole.
        max_http_buffer_size=settings.SOCKET_MAX_MESSAGE_BYTES,
        # No Flask session to carry from event to event (see SECRET_KEY above).
        manage_session=False,
    )
    # Flask-SocketIO runs every Socket.IO event in a request context built from the socket's
    # handshake environ (/socket.io/). With no rule for that path Flask stores a NotFound and its
    # traceback on each one: ~50 objects in reference cycles per event, which the cyclic GC then
    # collected in full passes of 200-300 ms over the heap of thousands of sockets, stalling every
    # socket (B3's p99, docs/BENCHMARKS.md). This rule only lets the URL map match: engine.io's
    # middleware answers /socket.io/ before a request could ever reach the view.
    # Websocket upgrades match only rules marked websocket=True, hence two rules.
    for websocket in (False, True):
        app.add_url_rule(
            "/socket.io/", "socketio", view_func=_served_by_engineio, websocket=websocket
        )
    app.wsgi_app = without_websocket_compression(app.wsgi_app)  # type: ignore[method-assign]
    if settings.ASYNC_MODE == "eventlet":
        app.wsgi_app = with_eventlet_input(app.wsgi_app)  # type: ignore[method-assign]
    # Overload is shed in front of Flask: before a request context, the limiter or the database.
    app.wsgi_app = with_admission(app.wsgi_app, gate, settings.cors_origins)  # type: ignore[method-assign]
    app.extensions["admission"] = gate
    # Outermost, so the REST API, the limits and the Socket.IO handshake see the same address.
    app.wsgi_app = with_trusted_proxies(app.wsgi_app, settings.TRUSTED_PROXY_COUNT)  # type: ignore[method-assign]
    # A bounded pool: every socket's connect and disconnect writes presence, and a burst of
    # thousands of disconnects (docs/BENCHMARKS.md) otherwise opened a Redis connection per green
    # thread at once, timing them all out and stalling the process. Waiters give up after 2 s.
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=32,
        timeout=2,
        socket_connect_timeout=1,
        socket_timeout=2,
    )
    client = redis.Redis(connection_pool=pool)
    presence = Presence(client)
    app.extensions["presence"] = presence
    guard = SocketGuard(socketio, settings)
    guard.install(writers_behind=manager.writers_behind)
    register_handlers(socketio, manager, presence, guard)
    return app
