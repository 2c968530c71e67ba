"""The Flask application factory of the web tier."""

from __future__ import annotations

import logging

import redis
from flask import Flask

from core.rooms import SOCKETIO_CHANNEL
from core.services.dispatch import set_dispatcher
from core.settings import Settings, get_settings
from web.api import admin, auth, campaigns, channels, health, notifications, users, withdrawals
from web.cli import register_commands
from web.dispatch import BrokerClient
from web.errors import register_error_handlers
from web.extensions import api, socketio
from web.presence import Presence
from web.queue import CatchUpRedisManager
from web.realtime import register_handlers

BLUEPRINTS = (auth, users, channels, campaigns, withdrawals, notifications, admin, health)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web application: REST API, Socket.IO endpoint and CLI commands."""
    settings = settings or get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.JWT_SECRET_KEY,
        API_TITLE="Ad marketplace notifications",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for module in BLUEPRINTS:
        api.register_blueprint(module.blp)
    register_error_handlers(app)
    register_commands(app)

    set_dispatcher(BrokerClient().enqueue)
    origins = settings.WEBSOCKET_CORS_ORIGINS
    manager = CatchUpRedisManager(settings.redis_url, channel=SOCKETIO_CHANNEL)
    socketio.init_app(
        app,
        async_mode=settings.ASYNC_MODE,
        client_manager=manager,
        cors_allowed_origins="*" if origins == ["*"] else origins,
    )
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)
    presence = Presence(client)
    app.extensions["presence"] = presence
    register_handlers(socketio, manager, presence)
    return app
