"""Withdrawals: reserve on request, return on rejection, keep on processing, decide once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.models import Notification, User, Withdrawal
from core.services import withdrawals
from core.services.errors import Forbidden, InsufficientFunds, InvalidTransition, NotFound
from tests.core.concurrency import race
from tests.core.conftest import Database, Factory


@pytest.fixture
def owner(make: Factory) -> User:
    return make.user("channel_owner", balance=10_000)


@pytest.fixture
def admin(make: Factory) -> User:
    return make.user("admin")


def test_a_request_reserves_the_amount_at_once(session, owner):
    withdrawal = withdrawals.request_withdrawal(session, owner, 3_000)

    assert (withdrawal.status, withdrawal.amount, withdrawal.user_id) == (
        "pending",
        3_000,
        owner.id,
    )
    assert owner.balance == 7_000


def test_the_whole_balance_may_be_withdrawn(session, owner):
    withdrawals.request_withdrawal(session, owner, 10_000)

    assert owner.balance == 0


def test_more_than_the_balance_is_insufficient_funds(session, owner):
    with pytest.raises(InsufficientFunds) as caught:
        withdrawals.request_withdrawal(session, owner, 10_001)

    assert (caught.value.status, caught.value.code) == (409, "insufficient_funds")
    assert caught.value.details == {"balance_minor": 10_000, "amount_minor": 10_001}
    assert owner.balance == 10_000
    assert session.scalars(select(Withdrawal)).all() == []


def test_reservations_add_up(session, owner):
    withdrawals.request_withdrawal(session, owner, 6_000)

    with pytest.raises(InsufficientFunds):
        withdrawals.request_withdrawal(session, owner, 6_000)

    assert owner.balance == 4_000


@pytest.mark.parametrize("role", ["advertiser", "admin"])
def test_only_channel_owners_withdraw(make: Factory, role):
    with pytest.raises(Forbidden):
        withdrawals.request_withdrawal(make.session, make.user(role, balance=1_000), 100)


def test_rejecting_returns_the_amount(session, owner, admin):
    withdrawal = withdrawals.request_withdrawal(session, owner, 3_000)

    withdrawals.reject(session, admin, withdrawal.id)

    assert (withdrawal.status, withdrawal.decided_by) == ("rejected", admin.id)
    assert withdrawal.decided_at is not None
    assert owner.balance == 10_000


def test_processing_keeps_the_amount_out(session, owner, admin):
    withdrawal = withdrawals.request_withdrawal(session, owner, 3_000)

    withdrawals.process(session, admin, withdrawal.id)

    assert (withdrawal.status, withdrawal.decided_by) == ("processed", admin.id)
    assert withdrawal.decided_at is not None
    assert owner.balance == 7_000


DECIDE = {"process": withdrawals.process, "reject": withdrawals.reject}


@pytest.mark.parametrize(("action", "kind"), [("process", "processed"), ("reject", "rejected")])
def test_the_owner_hears_the_decision_in_their_language(session, owner, admin, action, kind):
    withdrawal = withdrawals.request_withdrawal(session, owner, 10_000)

    DECIDE[action](session, admin, withdrawal.id)

    (told,) = session.scalars(select(Notification).where(Notification.user_id == owner.id))
    assert told.type == f"withdrawal_{kind}"
    assert told.payload == {"withdrawal_id": withdrawal.id, "amount": "100.00"}
    assert "100,00\xa0₽" in told.message  # the owner's locale is ru
    pending = [d.channel for d in told.deliveries if d.status == "pending"]
    assert sorted(pending) == ["email", "inbox"]  # Telegram and VK are not linked


@pytest.mark.parametrize("first", ["process", "reject"])
@pytest.mark.parametrize("second", ["process", "reject"])
def test_only_a_pending_withdrawal_can_be_decided(session, owner, admin, first, second):
    withdrawal = withdrawals.request_withdrawal(session, owner, 3_000)
    DECIDE[first](session, admin, withdrawal.id)
    decided = withdrawal.status
    balance = owner.balance

    with pytest.raises(InvalidTransition) as caught:
        DECIDE[second](session, admin, withdrawal.id)

    to = {"process": "processed", "reject": "rejected"}[second]
    assert caught.value.details == {"from": decided, "to": to}
    assert withdrawal.status == decided
    assert owner.balance == balance  # a second rejection never returns the amount twice


@pytest.mark.parametrize("action", ["process", "reject"])
@pytest.mark.parametrize("role", ["channel_owner", "advertiser"])
def test_only_admins_decide_and_others_cannot_even_see_it(make: Factory, owner, action, role):
    withdrawal = withdrawals.request_withdrawal(make.session, owner, 3_000)
    someone = owner if role == "channel_owner" else make.user(role)

    with pytest.raises(NotFound):
        DECIDE[action](make.session, someone, withdrawal.id)

    assert withdrawal.status == "pending"
    assert owner.balance == 7_000


@pytest.mark.parametrize("action", ["process", "reject"])
def test_an_unknown_withdrawal_is_not_found(session, admin, action):
    with pytest.raises(NotFound) as caught:
        DECIDE[action](session, admin, "missing")

    assert caught.value.details == {"withdrawal_id": "missing"}


def test_owners_list_their_own_and_admins_list_all(make: Factory, owner, admin):
    other = make.user("channel_owner", balance=500)
    mine = withdrawals.request_withdrawal(make.session, owner, 100)
    theirs = withdrawals.request_withdrawal(make.session, other, 200)

    assert [w.id for w in withdrawals.list_withdrawals(make.session, owner)] == [mine.id]
    assert {w.id for w in withdrawals.list_withdrawals(make.session, admin)} == {
        mine.id,
        theirs.id,
    }


# --- races ----------------------------------------------------------------------------


def balance_of(db: Database, user_id: str) -> int:
    with db.scope() as session:
        return session.get_one(User, user_id).balance


def test_concurrent_requests_never_reserve_more_than_the_balance(db: Database, session, owner):
    session.commit()

    def withdraw(barrier):
        with db.scope() as session:
            barrier.wait(timeout=10)
            user = session.get_one(User, owner.id)  # as the web tier loads the signed-in user
            return withdrawals.request_withdrawal(session, user, 4_000).amount

    outcomes = race(*[withdraw] * 4)

    granted = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert granted == [4_000, 4_000], outcomes
    assert all(isinstance(e, InsufficientFunds) for e in refused), refused
    assert balance_of(db, owner.id) == 2_000


def test_a_request_checks_the_balance_as_it_is_under_the_lock(
    db: Database, session, owner, postgres_only
):
    """The signed-in user is loaded before the lock; a request committed since must count."""
    session.commit()

    with db.sessions() as late:
        user = late.get_one(User, owner.id)  # the web tier's actor(): balance 10 000
        with db.scope() as early:
            withdrawals.request_withdrawal(early, early.get_one(User, owner.id), 8_000)

        with pytest.raises(InsufficientFunds):
            withdrawals.request_withdrawal(late, user, 8_000)

    assert balance_of(db, owner.id) == 2_000


def test_a_rejection_returns_the_amount_onto_the_balance_as_it_is_under_the_lock(
    db: Database, session, owner, admin, postgres_only
):
    """An owner row read earlier in the admin's transaction must not hide a newer balance."""
    rejected = withdrawals.request_withdrawal(session, owner, 3_000)
    session.commit()

    with db.sessions() as late:
        seen = late.get_one(User, owner.id)  # balance 7 000, e.g. shown to the admin
        with db.scope() as early:
            withdrawals.request_withdrawal(early, early.get_one(User, owner.id), 1_000)
        withdrawals.reject(late, late.get_one(User, admin.id), rejected.id)
        late.commit()
        assert seen.balance == 9_000

    assert balance_of(db, owner.id) == 6_000 + 3_000


def test_a_decision_sees_the_status_as_it_is_under_the_lock(
    db: Database, session, owner, admin, postgres_only
):
    """A withdrawal listed as pending earlier must not be processed after another admin's reject."""
    withdrawal = withdrawals.request_withdrawal(session, owner, 3_000)
    session.commit()

    with db.sessions() as late:
        late_admin = late.get_one(User, admin.id)
        [seen] = withdrawals.list_withdrawals(late, late_admin)
        assert seen.status == "pending"
        with db.scope() as early:
            withdrawals.reject(early, early.get_one(User, admin.id), withdrawal.id)

        with pytest.raises(InvalidTransition):
            withdrawals.process(late, late_admin, withdrawal.id)

    assert balance_of(db, owner.id) == 10_000
