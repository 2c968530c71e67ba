"""Shared fixtures: real Redis, real databases and real app processes for integration tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.probes import redis_answers
from tests.support.databases import (
    create_private_database,
    drop_private_database,
    ensure_migrated,
    postgres_unavailable_reason,
    postgres_url,
    reset_database,
    sqlite_url,
)
from tests.support.net import free_port
from tests.support.paths import LOGS_DIR, fresh_log_dir
from tests.support.redis_server import RedisServer, flush_redis
from tests.support.stack import Stack

StackFactory = Callable[..., Stack]
# The stacks a test built, so a failure report can show their logs.
STACKS_KEY = pytest.StashKey[list[Stack]]()


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker that runs a test on one database backend only."""
    config.addinivalue_line(
        "markers",
        "one_backend: what the test checks does not depend on the database, so it runs on one "
        "backend only (PostgreSQL when it answers, else SQLite; TEST_EVERY_BACKEND=1: both)",
    )


def _one_backend() -> str:
    """The backend `one_backend` tests run on: production's PostgreSQL if it answers here."""
    return "postgresql" if postgres_unavailable_reason(postgres_url()) is None else "sqlite"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration, so `-m "not integration"` runs fast.

    Tests marked `one_backend` keep only their run on the backend _one_backend() names; the
    other is deselected (storage behaviour is tested on both backends by the other tests).
    """
    every_backend = os.environ.get("TEST_EVERY_BACKEND", "") not in ("", "0")
    backend: str | None = None
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        if "integration" in Path(str(item.path)).parts:
            item.add_marker(pytest.mark.integration)
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("database_url") if callspec is not None else None
        if not every_backend and param is not None and item.get_closest_marker("one_backend"):
            backend = backend or _one_backend()
            if param != backend:
                deselected.append(item)
                continue
        kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the tails of the test's stack process logs to the report."""
    report = yield
    if report.failed:
        stacks = list(item.stash.get(STACKS_KEY, []))
        module_stack = getattr(item, "funcargs", {}).get("module_stack")
        if isinstance(module_stack, Stack):
            stacks.append(module_stack)
        for stack in stacks:
            report.sections.append((f"process logs ({stack.log_dir})", stack.logs()))
    return report


# --- Redis -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A flushed Redis: a private redis-server for this session, or TEST_REDIS_URL if set.

    Private by default because Celery queues and the Socket.IO pub/sub channel are global to a
    server: two test runs sharing one Redis would consume each other's tasks and broadcasts.
    """
    url = os.environ.get("TEST_REDIS_URL", "")
    server: RedisServer | None = None
    if not url or not redis_answers(url, timeout=1.0):
        server = RedisServer(free_port(), log_dir=LOGS_DIR / "session").start()
        url = server.url
    flush_redis(url)
    try:
        yield url
    finally:
        if server is not None:
            server.close()


@pytest.fixture
def private_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server of this test alone, which the test may stop() and start() again."""
    server = RedisServer(free_port(), log_dir=fresh_log_dir(request.node.nodeid + "-redis"))
    server.start()
    try:
        yield server
    finally:
        server.close()


# --- Databases ---------------------------------------------------------------------


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database: a SQLite file, or a PostgreSQL database of this session's own."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")
        ensure_migrated(url)
        yield url
        return
    base = postgres_url()
    reason = postgres_unavailable_reason(base, timeout=2.0)
    if reason is not None:
        pytest.skip(reason)
    private = create_private_database(base)
    if private is None:
        # No CREATE DATABASE right: use TEST_POSTGRES_URL itself, emptied first.
        reset_database(base)
        yield base
        return
    ensure_migrated(private)
    try:
        yield private
    finally:
        drop_private_database(base, private)


# --- Stacks ------------------------------------------------------------------------


def _backend(database_url: str) -> str:
    """Return 'sqlite' or 'postgresql', to tell module stacks' log dirs apart."""
    return make_url(database_url).get_backend_name()


def abandon_unfinished_deliveries(database_url: str) -> None:
    """Close deliveries an earlier test left unfinished, so this test's workers never send them."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE deliveries SET status = 'failed', error = 'left by an earlier test' "
                    "WHERE status IN ('pending', 'sending')"
                )
            )
    finally:
        engine.dispose()


@pytest.fixture
def make_stack(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
) -> Iterator[StackFactory]:
    """Build Stacks (default: the session database and Redis); all are closed at teardown."""
    stacks: list[Stack] = []
    request.node.stash[STACKS_KEY] = stacks
    abandon_unfinished_deliveries(database_url)
    # Tasks left unacked by an earlier test (killed workers) must not reach this test's workers.
    flush_redis(redis_url)

    def factory(
        database_url: str = database_url,
        redis_url: str = redis_url,
        extra_env: dict[str, str] | None = None,
    ) -> Stack:
        suffix = f"-{len(stacks)}" if stacks else ""
        stack = Stack(
            database_url,
            redis_url,
            workdir=tmp_path / f"stack{len(stacks)}",
            log_dir=fresh_log_dir(request.node.nodeid + suffix),
            extra_env=extra_env,
        )
        stacks.append(stack)
        return stack

    try:
        yield factory
    finally:
        for stack in reversed(stacks):
            stack.close()


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    """An unstarted Stack for this test; call stack.start(web=..., workers=..., beat=...)."""
    return make_stack()


@pytest.fixture(scope="module")
def module_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    redis_url: str,
) -> Iterator[Stack]:
    """A Stack shared by one module's tests; start() in each test only adds what is missing."""
    name = f"{request.node.nodeid}-{_backend(database_url)}"
    flush_redis(redis_url)
    stack = Stack(
        database_url,
        redis_url,
        workdir=tmp_path_factory.mktemp("module-stack"),
        log_dir=fresh_log_dir(name),
    )
    try:
        yield stack
    finally:
        stack.close()
