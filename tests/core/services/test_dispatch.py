"""Delivery ids reach the task queue only after their transaction commits."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from core.db import session_scope
from core.models import Delivery, User
from core.services import dispatch, notifications, users
from core.settings import Settings
from tests.core.conftest import Database


def register(session, settings: Settings, email: str = "ann@example.com") -> User:
    user, _ = users.register(
        session, settings, email=email, password="pw-123456", name="Ann", role="advertiser"
    )
    return user


def committed_deliveries(ids: list[str]) -> int:
    """How many of `ids` another connection can see, i.e. are committed."""
    with session_scope() as session:
        return session.scalar(select(func.count()).where(Delivery.id.in_(ids))) or 0


@pytest.fixture
def seen_at_dispatch(app_database: Database, recorded_dispatches):
    """What was committed when each dispatch happened: (channel, ids, how many visible)."""
    seen: list[tuple[str, list[str], int]] = []

    def dispatcher(channel: str, ids: list[str]) -> None:
        seen.append((channel, ids, committed_deliveries(ids)))

    dispatch.set_dispatcher(dispatcher)
    return seen


def test_ids_are_dispatched_after_the_commit(seen_at_dispatch, settings):
    with session_scope() as session:
        register(session, settings)
        session.flush()
        assert seen_at_dispatch == []  # flushed is not committed

    [(channel, ids, visible)] = seen_at_dispatch
    assert channel == "email"
    assert visible == len(ids) == 1


def test_nothing_is_dispatched_on_rollback(app_database, recorded_dispatches, settings):
    with pytest.raises(RuntimeError), session_scope() as session:
        register(session, settings)
        raise RuntimeError("the request failed after writing")

    assert recorded_dispatches == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_one_transaction_dispatches_once_per_channel(app_database, recorded_dispatches, settings):
    with session_scope() as session:
        for n in range(3):
            register(session, settings, email=f"u{n}@example.com")
        user = session.scalars(select(User)).first()
        notifications.notify(session, user, "new_campaign", {}, title="t", message="m")

    assert sorted((channel, len(ids)) for channel, ids in recorded_dispatches) == [
        ("email", 4),
        ("inbox", 1),
    ]
    with session_scope() as session:
        every_id = set(session.scalars(select(Delivery.id)))
    assert {i for _, ids in recorded_dispatches for i in ids} == every_id


def test_each_transaction_dispatches_its_own(app_database, recorded_dispatches, settings):
    for n in range(2):
        with session_scope() as session:
            register(session, settings, email=f"u{n}@example.com")

    assert [len(ids) for _, ids in recorded_dispatches] == [1, 1]
    assert recorded_dispatches[0][1] != recorded_dispatches[1][1]


def test_a_failing_dispatcher_never_undoes_the_commit(app_database, settings, caplog):
    def broker_down(channel: str, ids: list[str]) -> None:
        raise ConnectionError("redis down")

    dispatch.set_dispatcher(broker_down)
    try:
        with caplog.at_level(logging.WARNING), session_scope() as session:
            register(session, settings)
    finally:
        dispatch.set_dispatcher(None)

    assert "could not enqueue" in caplog.text
    with session_scope() as session:
        assert session.scalar(select(Delivery.status)) == "pending"  # left for the sweeper


def test_without_a_dispatcher_deliveries_wait_for_the_sweeper(app_database, settings):
    dispatch.set_dispatcher(None)

    with session_scope() as session:
        register(session, settings)

    with session_scope() as session:
        assert session.scalar(select(Delivery.status)) == "pending"


def test_dispatch_now_skips_an_empty_list(recorded_dispatches):
    dispatch.dispatch_now("inbox", [])

    assert recorded_dispatches == []


def test_batches_bound_the_size_of_one_task():
    ids = [str(n) for n in range(2 * dispatch.BATCH_SIZE + 50)]

    parts = dispatch.batches(ids)

    assert [len(p) for p in parts] == [dispatch.BATCH_SIZE, dispatch.BATCH_SIZE, 50]
    assert [i for p in parts for i in p] == ids
    assert dispatch.batches([]) == []
