"""Engine, session factory and the `session_scope()` unit of work shared by every process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
from psycopg2.extensions import TRANSACTION_STATUS_IDLE as IDLE
from sqlalchemy import Connection, Engine, Executable, Row, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from core.settings import get_settings

log = logging.getLogger(__name__)
AfterCommit = Callable[[], None]
M = TypeVar("M")
# Connections beyond the admitted API calls': socket handshakes, catch-up reads, /health.
OUTSIDE_THE_GATE = 10


def make_engine(url: str, *, pre_ping: bool = True) -> Engine:
    """Create an engine with the per-backend settings the platform relies on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; foreign keys are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # BEGIN IMMEDIATE takes the write lock up front, so read-then-write never deadlocks.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        # pysqlite's own transaction handling must be off for the BEGIN above to be ours.
        event.listen(engine, "connect", _disable_pysqlite_begin, insert=True)
        return engine
    # Up to 30 connections per process, kept open: with 10 kept and 20 "overflow" ones, a green
    # web process under load (thousands of sockets connecting, API bursts) opened and closed
    # PostgreSQL connections all the time, ~6% of its CPU plus a backend fork each time
    # (docs/BENCHMARKS.md, B1). The pool only grows to what a process really uses at once.
    # The web tier admits at most MAX_CONCURRENT_REQUESTS API calls at once (web/admission.py);
    # the pool holds that many plus room for what runs outside the gate (socket handshakes and
    # their catch-up, /health), so an admitted call does not wait for a connection.
    # A call never hangs on a database that is gone: connecting gives up after 3 s, and a
    # caller outside that gate (a socket's handshake, a worker) waits at most 5 s for the pool.
    # Workers ping a connection they take after it sat idle (_ping_if_idle). The web
    # process does not (init_web_pool): its reads retry once on a connection found dead
    # (read_reconnecting), and any other call answers 503 while the pool renews itself.
    # Recycling bounds how long a connection lives, below the idle timeouts of proxies.
    engine = create_engine(
        url,
        pool_recycle=1800,
        pool_size=get_settings().MAX_CONCURRENT_REQUESTS + OUTSIDE_THE_GATE,
        max_overflow=0,
        pool_timeout=5,
        connect_args={
            "connect_timeout": 3,
            # A server that vanishes without a reset (a partition) must not hang a call either:
            # unacknowledged data fails after 5 s, an idle connection's peer is probed.
            "tcp_user_timeout": 5000,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
        },
    )
    event.listen(engine, "checkin", _driver_transactions)
    if pre_ping:
        event.listen(engine, "checkin", _note_idle)
        event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A connection given back this recently is taken as alive, as pools such as HikariCP do (their
# 500 ms bypass): a busy worker takes connections many times a second, and SQLAlchemy's
# pre-ping cost a round trip per transaction, a tenth of a live task's CPU (BENCHMARKS.md).
PING_AFTER_IDLE_SECONDS = 1.0


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    """Remember when the connection went back to the pool."""
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection idle for a while; a dead one is replaced (the pool retries checkout)."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return  # new, or in use a moment ago
    try:
        # In autocommit, or the ping would open the transaction the caller's BEGIN belongs to.
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.autocommit = False
    except psycopg2.Error as exc:
        raise DisconnectionError(f"pooled connection found dead: {exc}") from exc


def _disable_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
    """Stop pysqlite from emitting its own BEGIN, as SQLAlchemy's docs advise."""
    dbapi_conn.isolation_level = None


_pre_ping = True


def init_web_pool() -> None:
    """Take pooled connections without pinging them (the web process, before its first query)."""
    global _pre_ping
    _pre_ping = False


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    return make_engine(get_settings().DATABASE_URL, pre_ping=_pre_ping)


def warm_pool(count: int) -> int:
    """Open up to `count` of the pool's connections now; how many were opened.

    A fresh web process otherwise opens them inside its first burst of calls, each a connect
    and a login to PostgreSQL, and shed calls a warm process serves (docs/BENCHMARKS.md, B4).
    A database that does not answer only costs the warm-up: the calls open what they need.
    """
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return 0
    opened = []
    try:
        for _ in range(count):
            opened.append(engine.raw_connection())
    except Exception as exc:  # the process still starts; the pool fills as calls come
        log.warning("database pool warmed with %d of %d connections: %s", len(opened), count, exc)
    finally:
        for connection in opened:
            connection.close()  # back to the pool, kept open
    return len(opened)


@lru_cache(maxsize=2)
def get_sessionmaker(autocommit: bool = False) -> sessionmaker[Session]:
    """The process-wide session factory; `autocommit` only on PostgreSQL (see session_scope)."""
    engine = get_engine()
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    if autocommit and engine.dialect.name == "postgresql":
        event.listen(factory, "after_begin", _driver_autocommit)
    return factory


# SQLAlchemy's isolation_level="AUTOCOMMIT" calls psycopg2's set_isolation_level on checkout and
# again on checkin, a round trip each (40 µs apiece here, 2 of the 4 round trips of a create);
# psycopg2's own `autocommit` attribute is a client-side switch, as SQLAlchemy's pre-ping uses it.
def _driver_autocommit(_session: Session, _transaction: Any, connection: Connection) -> None:
    """Let the driver send each statement as its own transaction (no BEGIN, no COMMIT)."""
    driver = connection.connection.driver_connection
    # Only on an idle connection: psycopg2 refuses the switch inside a transaction.
    if driver is not None and not driver.autocommit and driver.info.transaction_status == IDLE:
        driver.autocommit = True


def _driver_transactions(dbapi_connection: Any, _record: Any) -> None:
    """Give a pooled connection back its transactions (see _driver_autocommit)."""
    if dbapi_connection is None or dbapi_connection.closed:
        return  # invalidated or dropped: the pool opens a new one, with transactions
    if dbapi_connection.autocommit:
        dbapi_connection.autocommit = False


def read_reconnecting(
    session: Session, statement: Executable, parameters: dict[str, Any] | None = None
) -> Row[Any] | None:
    """The first row of a read; once more on a fresh connection if the pooled one was dead.

    The web process does not ping each connection it takes from the pool (a round trip per
    call): a connection the database dropped since (a restart) fails its first statement, which
    SQLAlchemy turns into a new connection for the whole pool. A read that opens the session's
    transaction has changed nothing yet, so running it again is safe, and after it the
    connection is known to be alive.
    """
    opens = not session.in_transaction()
    try:
        return session.connection().execute(statement, parameters).first()
    except DBAPIError as exc:
        if not (opens and exc.connection_invalidated):
            raise
        log.warning("database connection was dead; reading again on a fresh one")
        session.rollback()
        return session.connection().execute(statement, parameters).first()


def adopt(session: Session, *instances: Any) -> None:
    """Make objects whose rows a Core statement just wrote part of the session, as if loaded."""
    for instance in instances:
        make_transient_to_detached(instance)
        session.add(instance)


def as_changed(session: Session, model: type[M], row: Row[Any], changes: dict[str, Any]) -> M:
    """The object of a row read with Core and changed by a Core statement, as now stored.

    One the session already holds takes the new values as if loaded; otherwise one is built
    from the row and `changes` and adopted, so nobody reads the row back.
    """
    instance = session.identity_map.get(identity_key(model, row.id))
    if instance is not None:
        for name, value in changes.items():
            set_committed_value(instance, name, value)
        return instance  # type: ignore[no-any-return]
    columns = model.__table__.columns  # type: ignore[attr-defined]
    instance = model(**{**{c.name: row._mapping[c.name] for c in columns}, **changes})
    adopt(session, instance)
    return instance


def on_commit(session: Session, callback: AfterCommit) -> None:
    """Run `callback` once the session's transaction has committed, never on rollback."""
    session.info.setdefault("after_commit", []).append(callback)


@contextmanager
def session_scope(autocommit: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, then run after-commit callbacks.

    `autocommit` is for work whose writes are one statement (notification_writes): on
    PostgreSQL that statement is then its own transaction, which spares the BEGIN and COMMIT
    round trips; other databases keep the transaction.
    """
    session = get_sessionmaker(autocommit)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
        session.close()
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The transaction is durable already; the sweeper re-sends whatever this missed.
            log.exception("after-commit callback failed")
