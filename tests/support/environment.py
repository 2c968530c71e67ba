"""The environment the app's processes run with during tests."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

from tests.support.paths import REPO_ROOT

# Settings the app reads from the environment; a developer's shell must not leak them
# into a test process unless the harness sets them explicitly.
APP_SETTING_PREFIXES = (
    "APP_",
    "DATABASE_",
    "REDIS_",
    "JWT_",
    "SENDGRID_",
    "WEBSOCKET_",
    "FLOWER_",
    "CELERY_",
)
APP_SETTING_NAMES = frozenset(
    {
        "ASYNC_MODE",
        "BCRYPT_ROUNDS",
        "OUTBOX_DIR",
        "FRONTEND_URL",
        "ENABLE_BACKGROUND_TASKS",
        "SWEEP_INTERVAL_SECONDS",
        "TELEGRAM_BOT_TOKEN",
        "VK_SERVICE_KEY",
        "PORT",
        "WEB_CONCURRENCY",
        "GUNICORN_CMD_ARGS",
    }
)

TEST_JWT_SECRET = "integration-tests-secret-0123456789abcdef0123456789abcdef"
# What the harness shows /health?deep=1 (X-Health-Token), as an operator's monitoring would.
TEST_HEALTH_TOKEN = "integration-tests-health-token"


@functools.cache
def _declared_settings() -> frozenset[str]:
    """Return the names core.settings declares, so new settings are filtered without edits."""
    try:
        from core.settings import Settings  # Late: the harness must load without the app.
    except ImportError:
        return frozenset()
    return frozenset(Settings.model_fields)


def is_app_setting(name: str) -> bool:
    """Tell whether an environment variable belongs to the app's configuration."""
    return (
        name in APP_SETTING_NAMES
        or name.startswith(APP_SETTING_PREFIXES)
        or name in _declared_settings()
    )


def child_environ(explicit: Mapping[str, str]) -> dict[str, str]:
    """Return os.environ without stray app settings, overlaid with `explicit`."""
    env = {k: v for k, v in os.environ.items() if not is_app_setting(k)}
    # Unbuffered so logs are complete when a process is SIGKILLed and ready lines show up.
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO_ROOT)})
    env.update(explicit)
    return env


def app_env(database_url: str, redis_url: str, outbox_dir: Path) -> dict[str, str]:
    """Return the settings every process of one test stack shares."""
    return {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET_KEY": TEST_JWT_SECRET,
        # Cheap hashing: registration is on every test's path.
        "BCRYPT_ROUNDS": "4",
        "OUTBOX_DIR": str(outbox_dir),
        # Short, so tests about lost enqueues finish in seconds.
        "SWEEP_INTERVAL_SECONDS": "2",
        "ASYNC_MODE": os.environ.get("TEST_ASYNC_MODE", "eventlet"),
        "FRONTEND_URL": "http://frontend.test",
        "HEALTH_TOKEN": TEST_HEALTH_TOKEN,
        # Hundreds of accounts and sockets from one address in minutes: the rate limits are
        # off, as for load tests; tests/integration/test_edge_*.py turn them on. The hard caps
        # (sockets per user, frame and body size, unsent bytes) stay on everywhere.
        "RATE_LIMIT_ENABLED": "false",
        # Tests fire bursts of calls from thread pools; shedding them is test_overload.py's
        # business, which sets its own gate.
        "MAX_CONCURRENT_REQUESTS": "16",
        "MAX_WAITING_REQUESTS": "1000",
        "MAX_QUEUE_WAIT_SECONDS": "30",
    }
