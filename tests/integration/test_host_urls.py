"""URLs as hosts give them: postgres:// and postgresql://, a TLS Redis with its own certificate."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import StackFactory
from tests.support.environment import TEST_HEALTH_TOKEN
from tests.support.flows import create_campaign, create_channel
from tests.support.net import free_port
from tests.support.paths import REPO_ROOT, fresh_log_dir
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack


def lifecycle_reaches_the_owner(stack: Stack) -> None:
    """A campaign request reaches its channel owner's socket."""
    api = stack.api()
    owner, advertiser = api.register("channel_owner"), api.register()
    channel = create_channel(api, owner)
    tab = stack.live(owner.access_token)
    campaign = create_campaign(api, advertiser, channel["id"])
    tab.wait_for(lambda n: n.get("campaign_id") == campaign["id"], timeout=20)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_plain_postgres_urls(make_stack: StackFactory, database_url: str, scheme: str) -> None:
    """The release step and every process run on the URL exactly as Heroku hands it out."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("a PostgreSQL URL needs PostgreSQL")
    host_url = url.set(drivername=scheme).render_as_string(hide_password=False)
    assert host_url.startswith(f"{scheme}://")
    stack = make_stack(database_url=host_url)
    # The Procfile's release step, as the host runs it.
    release = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT, env={**stack.env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert release.returncode == 0, release.stderr
    stack.start(web=1, workers=1)
    lifecycle_reaches_the_owner(stack)


@pytest.fixture
def tls_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A Redis that speaks only TLS, with a self-signed certificate."""
    server = RedisServer(free_port(), log_dir=fresh_log_dir(request.node.nodeid), tls=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.one_backend
def test_tls_redis_with_a_self_signed_certificate(
    make_stack: StackFactory, tls_redis: RedisServer
) -> None:
    """rediss:// and REDIS_TLS_VERIFY=false: broker, message queue, presence, limits, health."""
    assert tls_redis.url.startswith("rediss://")
    env = {"REDIS_TLS_VERIFY": "false", "RATE_LIMIT_ENABLED": "true"}
    stack = make_stack(redis_url=tls_redis.url, extra_env=env).start(web=1, workers=1, beat=True)
    lifecycle_reaches_the_owner(stack)
    health = stack.api().get(
        "/health?deep=1", headers={"X-Health-Token": TEST_HEALTH_TOKEN}, timeout=20
    )
    body = health.json()
    assert body["redis"] == "ok" and body["rate_limits"] == "ok", body
    checks = body["checks"]
    assert checks["message_queue"]["status"] == "ok", checks
    assert checks["redis"]["socketio_listeners"] >= 1, checks
    assert all(c["status"] == "ok" for c in checks["workers"].values()), checks
    assert checks["beat"]["status"] == "ok", checks
    assert body["websocket"]["connections"] >= 1, body
