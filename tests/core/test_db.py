"""`session_scope()`: one transaction, and after-commit callbacks that only follow a commit."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from core.db import on_commit, session_scope
from core.models import User
from core.settings import get_settings
from tests.core.conftest import Database


def add_user(session, email: str = "ann@example.com") -> None:
    session.add(User(email=email, name="Ann", password_hash="x", role="advertiser"))


def user_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def test_the_scope_uses_the_configured_database(app_database: Database):
    configured = get_settings().DATABASE_URL

    assert configured == app_database.url


def test_a_scope_commits_and_then_runs_its_callbacks(app_database):
    ran: list[int] = []

    with session_scope() as session:
        add_user(session)
        on_commit(session, lambda: ran.append(user_count()))
        assert ran == []

    assert ran == [1]  # the callback already sees the committed row


def test_a_failed_scope_rolls_back_and_drops_its_callbacks(app_database):
    ran: list[str] = []

    with pytest.raises(ValueError), session_scope() as session:
        add_user(session)
        on_commit(session, lambda: ran.append("ran"))
        raise ValueError("boom")

    assert ran == []
    assert user_count() == 0


def test_a_failed_commit_drops_the_callbacks(app_database):
    ran: list[str] = []
    with session_scope() as session:
        add_user(session)

    with pytest.raises(Exception, match="(?i)unique"), session_scope() as session:
        add_user(session)  # the same email: the commit's flush fails
        on_commit(session, lambda: ran.append("ran"))

    assert ran == []
    assert user_count() == 1


def test_a_failing_callback_is_logged_and_the_rest_still_run(app_database, caplog):
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("broker down")

    with caplog.at_level(logging.ERROR), session_scope() as session:
        add_user(session)
        on_commit(session, broken)
        on_commit(session, lambda: ran.append("second"))

    assert ran == ["second"]
    assert "after-commit callback failed" in caplog.text
    assert user_count() == 1


def test_an_autocommit_scope_writes_without_a_transaction_and_pools_it_back(app_database):
    from sqlalchemy import text

    from core.db import get_engine

    with session_scope(autocommit=True) as session:
        driver = session.connection().connection.driver_connection
        add_user(session)
        session.flush()
        if app_database.is_postgres:
            # The row is committed by its own statement, before the scope ends (SQLite keeps
            # its transaction, whose write lock another session would wait for).
            assert user_count() == 1

    assert user_count() == 1
    # The connection went back to the pool with transactions again: an ordinary scope's
    # failure rolls back everything it wrote.
    with pytest.raises(ValueError), session_scope() as session:
        add_user(session, "bob@example.com")
        session.flush()
        raise ValueError("boom")
    assert user_count() == 1
    if app_database.is_postgres:
        assert driver.autocommit is False
        with get_engine().connect() as conn:
            assert conn.execute(text("SHOW transaction_isolation")).scalar() == "read committed"


def test_a_worker_pool_replaces_a_connection_that_died_while_idle(app_database, monkeypatch):
    from sqlalchemy import text

    from core import db as core_db

    if not app_database.is_postgres:
        pytest.skip("a SQLite file has no server connection to lose")
    engine = core_db.make_engine(app_database.url, pre_ping=True)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        # Given back a moment ago: taken again without a ping, so the same connection.
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == first
        with app_database.scope() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        monkeypatch.setattr(core_db, "PING_AFTER_IDLE_SECONDS", 0.0)
        # Idle past the threshold: pinged, found dead, replaced before the caller sees it.
        with engine.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert second != first
    finally:
        engine.dispose()


def test_the_pool_is_warmed_before_the_first_calls(app_database, monkeypatch, caplog):
    """warm_pool opens connections that stay pooled; a database that is gone only logs."""
    from core import db as core_db

    engine = core_db.get_engine()
    engine.dispose()
    opened = core_db.warm_pool(3)
    if not app_database.is_postgres:
        assert opened == 0  # a SQLite file has nothing to open ahead
        return
    assert opened == 3
    assert engine.pool.checkedin() == 3
    assert engine.pool.checkedout() == 0

    def refuse() -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(engine, "raw_connection", refuse)
    with caplog.at_level(logging.WARNING, logger="core.db"):
        assert core_db.warm_pool(3) == 0
    assert "warmed with 0 of 3 connections" in caplog.text
