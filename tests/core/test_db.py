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
