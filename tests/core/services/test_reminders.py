"""Withdrawal reminders: every admin, once per window, stopped by a decision."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models import Delivery, Notification, User, Withdrawal
from core.services import reminders, withdrawals
from core.services.jobs.runner import run_job
from tests.core.concurrency import race
from tests.core.conftest import Database, Factory
from tests.core.jobs_helpers import at, backdate, frozen

WINDOW = at("2026-03-02 12:00")  # one 6-hour window: 12:00 to 18:00
NOW = at("2026-03-02 12:00:05")


@pytest.fixture
def admins(make: Factory) -> list[User]:
    return [make.user("admin", locale="en"), make.user("admin", locale="ru")]


def pending(make: Factory, amount: int, age: timedelta, name: str | None = None) -> Withdrawal:
    """A pending withdrawal requested `age` before NOW."""
    owner = make.user("channel_owner", balance=amount)
    if name:
        owner.name = name
    withdrawal = withdrawals.request_withdrawal(make.session, owner, amount)
    backdate(make.session, Withdrawal, withdrawal.id, NOW - age)
    return withdrawal


def reminders_of(db: Database, user: User) -> list[Notification]:
    with db.scope() as session:
        query = select(Notification).where(
            Notification.user_id == user.id, Notification.type == "withdrawal_reminder"
        )
        return list(session.scalars(query.order_by(Notification.seq)))


def remind(db: Database, now=NOW, window=WINDOW) -> dict[str, int]:
    with db.scope() as session:
        return reminders.remind(session, window, now, after_hours=24)


def test_a_withdrawal_pending_25_hours_reaches_every_admin(db: Database, make, admins):
    w = pending(make, 150_000, timedelta(hours=25), name="Olga")
    make.session.commit()

    counts = remind(db)

    assert counts == {"withdrawals": 1, "admins": 2, "notifications": 2}
    for admin in admins:
        [note] = reminders_of(db, admin)
        assert note.payload == {
            "count": 1,
            "total": "1500.00",
            "withdrawals": [
                {"id": w.id, "owner_name": "Olga", "amount": "1500.00", "age_hours": 25}
            ],
        }
    assert reminders_of(db, admins[0])[0].title == "Withdrawals awaiting processing"
    assert reminders_of(db, admins[1])[0].title == "Заявки на вывод ждут обработки"


def test_each_reminder_goes_out_live_and_by_email(db: Database, make, admins):
    pending(make, 1_000, timedelta(hours=30))
    make.session.commit()
    remind(db)

    with db.scope() as session:
        channels = session.scalars(
            select(Delivery.channel)
            .join(Notification)
            .where(Notification.user_id == admins[0].id, Delivery.status == "pending")
            .order_by(Delivery.channel)
        ).all()
    assert channels == ["email", "inbox"]


def test_younger_than_24_hours_is_not_reminded(db: Database, make, admins):
    pending(make, 1_000, timedelta(hours=23, minutes=59))
    make.session.commit()

    assert remind(db)["withdrawals"] == 0
    assert reminders_of(db, admins[0]) == []


def test_not_twice_in_one_window_but_again_in_the_next(db: Database, make, admins):
    pending(make, 1_000, timedelta(hours=25))
    make.session.commit()

    remind(db)
    remind(db, now=NOW + timedelta(hours=5))
    assert len(reminders_of(db, admins[0])) == 1

    remind(db, now=NOW + timedelta(hours=6), window=WINDOW + timedelta(hours=6))
    assert len(reminders_of(db, admins[0])) == 2


def test_a_processed_or_rejected_withdrawal_is_not_reminded_again(db: Database, make, admins):
    processed = pending(make, 1_000, timedelta(hours=25))
    rejected = pending(make, 2_000, timedelta(hours=25))
    still = pending(make, 4_000, timedelta(hours=25))
    make.session.commit()
    remind(db)

    with db.scope() as session:
        admin = session.get_one(User, admins[0].id)
        withdrawals.process(session, admin, processed.id)
        withdrawals.reject(session, admin, rejected.id)
    next_window = WINDOW + timedelta(hours=6)
    remind(db, now=NOW + timedelta(hours=6), window=next_window)

    first, second = reminders_of(db, admins[0])
    assert (first.payload["count"], first.payload["total"]) == (3, "70.00")
    assert second.payload["count"] == 1
    assert [w["id"] for w in second.payload["withdrawals"]] == [still.id]


def test_count_and_total_cover_all_while_the_list_is_capped(
    db: Database, make, admins, monkeypatch
):
    monkeypatch.setattr(reminders, "LIST_LIMIT", 2)
    ids = [pending(make, 100 * (i + 1), timedelta(hours=48 - i)).id for i in range(3)]
    make.session.commit()
    remind(db)

    [note] = reminders_of(db, admins[0])
    assert (note.payload["count"], note.payload["total"]) == (3, "6.00")
    assert [w["id"] for w in note.payload["withdrawals"]] == ids[:2]  # oldest first


def test_without_admins_nothing_is_recorded_so_the_first_admin_hears_of_it(db: Database, make):
    pending(make, 1_000, timedelta(hours=25))
    make.session.commit()
    assert remind(db) == {"withdrawals": 0, "admins": 0, "notifications": 0}

    admin = make.user("admin")
    make.session.commit()
    remind(db)
    assert len(reminders_of(db, admin)) == 1


def test_the_job_s_window_is_its_6_hour_period(db: Database, settings, make, admins):
    pending(make, 1_000, timedelta(hours=25))
    make.session.commit()

    with frozen("2026-03-02 17:59:59"):
        first = run_job("send_pending_withdrawal_reminders", scope=db.scope, settings=settings)
        # run-job in the same window: recorded as a run, but reminds nobody twice
        manual = run_job(
            "send_pending_withdrawal_reminders", trigger="manual", scope=db.scope, settings=settings
        )

    assert first.result["window"] == WINDOW.isoformat()
    assert (first.result["notifications"], manual.result["notifications"]) == (2, 0)


def test_two_runs_at_once_remind_once(db: Database, make, admins, postgres_only):
    pending(make, 1_000, timedelta(hours=25))
    make.session.commit()

    def run(barrier):
        with db.scope() as session:
            session.get_one(User, admins[0].id)  # open the transaction first
            barrier.wait()
            return reminders.remind(session, WINDOW, NOW, after_hours=24)["notifications"]

    results = race(run, run)

    assert sorted(results) == [0, 2], results
    assert len(reminders_of(db, admins[0])) == 1
