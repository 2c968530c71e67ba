"""Create, reset and migrate the test databases (SQLite file or PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.support.environment import TEST_JWT_SECRET, child_environ
from tests.support.net import port_open
from tests.support.paths import REPO_ROOT

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

# URLs migrated in this session; alembic is slow to start and the migrations do not change.
_migrated: set[str] = set()


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path}"


def postgres_url() -> str:
    """Return the PostgreSQL URL the tests use (TEST_POSTGRES_URL or the default)."""
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_unavailable_reason(url: str, timeout: float = 2.0) -> str | None:
    """Return why PostgreSQL at `url` cannot be used, or None if it answers in time."""
    parsed = make_url(url)
    host, port = parsed.host or "127.0.0.1", parsed.port or 5432
    # A TCP probe first: psycopg2 ignores connect_timeout while resolving some hosts.
    if not port_open(host, port, timeout):
        return f"PostgreSQL at {host}:{port} does not answer (set TEST_POSTGRES_URL)"
    engine = sa.create_engine(url, connect_args={"connect_timeout": max(1, int(timeout))})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # Any failure means "skip", with the reason shown to the user.
        return f"PostgreSQL at {parsed.render_as_string(hide_password=True)} unusable: {exc}"
    finally:
        engine.dispose()
    return None


def create_private_database(url: str) -> str | None:
    """Create a database of this test session's own beside `url`; None if not allowed.

    Test runs on one machine (CI, a developer, a benchmark) would otherwise reset each
    other's tables in the shared `test` database.
    """
    parsed = make_url(url)
    name = f"{parsed.database or 'test'}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.DBAPIError:
        return None
    finally:
        engine.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def drop_private_database(base_url: str, url: str) -> None:
    """Drop a database made by create_private_database, closing what still uses it."""
    name = make_url(url).database
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def drop_postgres_schema(url: str) -> None:
    """Drop every table, type and sequence by recreating the public schema."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def drop_sqlite_file(url: str) -> None:
    """Delete a SQLite database file and its WAL/journal companions."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(database + suffix).unlink(missing_ok=True)


def run_migrations(url: str, env: Mapping[str, str] | None = None) -> None:
    """Run `python -m alembic upgrade head` against `url` in a subprocess."""
    # The app's settings may be loaded by env.py, so give it the stack's env when known.
    defaults = {"APP_ENV": "test", "JWT_SECRET_KEY": TEST_JWT_SECRET}
    child_env = child_environ({**defaults, **(env or {}), "DATABASE_URL": url})
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"alembic upgrade head failed ({result.returncode}) for {url}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    _migrated.add(url)


def ensure_migrated(url: str, env: Mapping[str, str] | None = None) -> None:
    """Run the migrations once per session for `url`."""
    if url not in _migrated:
        run_migrations(url, env)


def reset_database(url: str, env: Mapping[str, str] | None = None) -> None:
    """Empty the database completely and migrate it to head again."""
    _migrated.discard(url)
    if make_url(url).get_backend_name() == "postgresql":
        drop_postgres_schema(url)
    else:
        drop_sqlite_file(url)
    run_migrations(url, env)
