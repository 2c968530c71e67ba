"""Checks of the test harness itself: private Redis restarts and clean databases."""

from __future__ import annotations

import redis
import sqlalchemy as sa

from core.probes import redis_answers
from tests.support.redis_server import RedisServer


def test_private_redis_stops_and_restarts_on_the_same_port(private_redis: RedisServer) -> None:
    """A stopped private Redis refuses connections and comes back empty on the same URL."""
    client = redis.Redis.from_url(private_redis.url, socket_timeout=1)
    client.set("k", "v")
    private_redis.stop()
    assert not redis_answers(private_redis.url, timeout=0.5)
    private_redis.start()
    assert redis_answers(private_redis.url)
    # No persistence: an outage loses Redis data, which is what outage tests rely on.
    assert client.get("k") is None


def test_session_redis_answers(redis_url: str) -> None:
    """The session Redis (shared or private) answers PING."""
    assert redis_answers(redis_url)


def test_database_is_migrated(database_url: str) -> None:
    """The session database has the migrated schema, recorded by alembic."""
    engine = sa.create_engine(database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert "alembic_version" in tables
    assert len(tables) > 1
