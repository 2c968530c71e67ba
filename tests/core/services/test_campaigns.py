"""The campaign lifecycle: who may act, every illegal transition, the payout and its races."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Campaign, Notification, User
from core.services import campaigns
from core.services.errors import Forbidden, InvalidTransition, NotFound
from tests.core.concurrency import race
from tests.core.conftest import FEE_PERCENT, Database, Factory

ACTIONS = ("accept", "reject", "complete", "cancel")
TARGET = {
    "accept": "accepted",
    "reject": "rejected",
    "complete": "completed",
    "cancel": "cancelled",
}
STATES = ("pending", "accepted", "rejected", "completed", "cancelled")
# SPEC.md: pending → accepted | rejected; accepted → completed | cancelled; nothing else.
LEGAL = {
    ("pending", "accept"),
    ("pending", "reject"),
    ("accepted", "complete"),
    ("accepted", "cancel"),
}
ILLEGAL = [(s, a) for s in STATES for a in ACTIONS if (s, a) not in LEGAL]


def act(session: Session, action: str, user: User, campaign_id: str, fee: Decimal = FEE_PERCENT):
    """Run one lifecycle action as `user`."""
    if action == "complete":
        return campaigns.complete(session, user, campaign_id, fee)
    return getattr(campaigns, action)(session, user, campaign_id)


def owner_of(session: Session, campaign: Campaign) -> User:
    return session.get_one(User, campaign.channel.owner_id)


def advertiser_of(session: Session, campaign: Campaign) -> User:
    return session.get_one(User, campaign.advertiser_id)


def rightful_actor(session: Session, campaign: Campaign, action: str) -> User:
    """The channel's owner accepts and rejects; the advertiser completes and cancels."""
    if action in ("accept", "reject"):
        return owner_of(session, campaign)
    return advertiser_of(session, campaign)


def notifications_of(session: Session, user: User) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user.id).order_by(Notification.seq)
    return list(session.scalars(query))


def balance_of(db: Database, user_id: str) -> int:
    with db.scope() as session:
        return session.get_one(User, user_id).balance


# --- creating and reading -------------------------------------------------------------


def test_a_new_campaign_is_pending_at_the_channel_price_and_tells_the_owner(make: Factory):
    owner = make.user("channel_owner", locale="en")
    channel = make.channel(owner, price=150_000)
    advertiser = make.user("advertiser")

    campaign = campaigns.create_campaign(
        make.session, advertiser.id, channel_id=channel.id, title="Spring sale", content="Buy"
    )

    assert (campaign.status, campaign.price, campaign.fee, campaign.payout) == (
        "pending",
        150_000,
        None,
        None,
    )
    [notice] = notifications_of(make.session, owner)
    assert (notice.type, notice.campaign_id, notice.title) == (
        "new_campaign",
        campaign.id,
        "New placement request",
    )
    assert notice.payload["price"] == "1500.00"
    assert notice.payload["advertiser_name"] == advertiser.name


def test_a_campaign_may_name_its_own_price(make: Factory):
    assert make.campaign(price=99_999).price == 99_999


@pytest.mark.parametrize("role", ["channel_owner", "admin"])
def test_only_advertisers_create_campaigns(make: Factory, role):
    channel = make.channel()

    with pytest.raises(Forbidden):
        make.campaign(make.user(role), channel)


def test_a_campaign_in_an_unknown_channel_is_not_found(make: Factory):
    with pytest.raises(NotFound):
        campaigns.create_campaign(
            make.session, make.user().id, channel_id="missing", title="t", content="c"
        )


def test_parties_see_their_campaigns_and_admins_see_all(make: Factory):
    mine = make.campaign()
    other = make.campaign()
    advertiser = advertiser_of(make.session, mine)
    owner = owner_of(make.session, mine)

    assert [c.id for c in campaigns.list_campaigns(make.session, advertiser)] == [mine.id]
    assert [c.id for c in campaigns.list_campaigns(make.session, owner)] == [mine.id]
    admin = make.user("admin")
    assert {c.id for c in campaigns.list_campaigns(make.session, admin)} == {mine.id, other.id}
    assert campaigns.get_campaign(make.session, admin, other.id) is other


def test_the_list_filters_by_status(make: Factory):
    advertiser = make.user()
    pending = make.campaign(advertiser)
    accepted = make.campaign(advertiser, status="accepted")

    listed = campaigns.list_campaigns
    assert [c.id for c in listed(make.session, advertiser, "pending")] == [pending.id]
    assert [c.id for c in listed(make.session, advertiser, "accepted")] == [accepted.id]


@pytest.mark.parametrize("stranger_role", ["advertiser", "channel_owner"])
def test_another_user_s_campaign_is_not_found(make: Factory, stranger_role):
    campaign = make.campaign()
    stranger = make.user(stranger_role)

    with pytest.raises(NotFound) as caught:
        campaigns.get_campaign(make.session, stranger, campaign.id)

    assert caught.value.details == {"campaign_id": campaign.id}
    assert campaigns.list_campaigns(make.session, stranger) == []


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("stranger_role", ["advertiser", "channel_owner"])
def test_no_action_on_another_user_s_campaign(make: Factory, action, stranger_role):
    campaign = make.campaign(status="pending" if action in ("accept", "reject") else "accepted")
    before = campaign.status

    with pytest.raises(NotFound):
        act(make.session, action, make.user(stranger_role), campaign.id)

    assert campaign.status == before


# --- the lifecycle --------------------------------------------------------------------


def test_the_owner_accepts_and_the_advertiser_is_told(make: Factory):
    campaign = make.campaign()
    advertiser = advertiser_of(make.session, campaign)

    campaigns.accept(make.session, owner_of(make.session, campaign), campaign.id)

    assert campaign.status == "accepted"
    assert [n.type for n in notifications_of(make.session, advertiser)] == ["campaign_accepted"]


def test_the_owner_rejects_and_the_advertiser_is_told(make: Factory):
    campaign = make.campaign()
    advertiser = advertiser_of(make.session, campaign)

    campaigns.reject(make.session, owner_of(make.session, campaign), campaign.id)

    assert campaign.status == "rejected"
    assert [n.type for n in notifications_of(make.session, advertiser)] == ["campaign_rejected"]


def test_the_advertiser_cancels_an_accepted_campaign_without_payout(make: Factory):
    campaign = make.campaign(status="accepted")
    owner = owner_of(make.session, campaign)

    campaigns.cancel(make.session, advertiser_of(make.session, campaign), campaign.id)

    assert (campaign.status, campaign.payout, owner.balance) == ("cancelled", None, 0)


def test_completing_pays_the_owner_the_price_minus_the_fee(make: Factory):
    owner = make.user("channel_owner", locale="en")
    campaign = make.campaign(channel=make.channel(owner, price=150_000), status="accepted")

    campaigns.complete(
        make.session, advertiser_of(make.session, campaign), campaign.id, Decimal(10)
    )

    assert (campaign.status, campaign.fee, campaign.payout) == ("completed", 15_000, 135_000)
    assert campaign.completed_at is not None
    assert owner.balance == 135_000
    notice = notifications_of(make.session, owner)[-1]
    assert notice.type == "campaign_completed"
    assert (notice.payload["payout"], notice.payload["fee"]) == ("1350.00", "150.00")
    assert "RUB\xa01,350.00" in notice.message  # the owner reads it in English


@pytest.mark.parametrize(
    ("price", "percent", "fee", "payout"),
    [
        (1_005, Decimal("10"), 101, 904),  # a fee of 100.5 rounds half up
        (999, Decimal("12.5"), 125, 874),
        (1_000, Decimal("0"), 0, 1_000),
        (1_000, Decimal("100"), 1_000, 0),
    ],
)
def test_payout_math_in_minor_units(make: Factory, price, percent, fee, payout):
    campaign = make.campaign(price=price, status="accepted")
    owner = owner_of(make.session, campaign)

    campaigns.complete(make.session, advertiser_of(make.session, campaign), campaign.id, percent)

    assert (campaign.fee, campaign.payout, owner.balance) == (fee, payout, payout)
    assert campaign.fee + campaign.payout == price


def test_payouts_add_up_on_the_owner_s_balance(make: Factory):
    owner = make.user("channel_owner", balance=5_000)
    channel = make.channel(owner, price=1_000)

    make.campaign(channel=channel, status="completed")
    make.campaign(channel=channel, status="completed")

    assert owner.balance == 5_000 + 2 * 900


def test_an_admin_may_complete(make: Factory):
    campaign = make.campaign(status="accepted")

    campaigns.complete(make.session, make.user("admin"), campaign.id, FEE_PERCENT)

    assert campaign.status == "completed"
    assert owner_of(make.session, campaign).balance == campaign.payout


@pytest.mark.parametrize(
    ("action", "who"),
    [
        ("accept", "advertiser"),
        ("reject", "advertiser"),
        ("accept", "admin"),
        ("reject", "admin"),
        ("complete", "owner"),
        ("cancel", "owner"),
        ("cancel", "admin"),
    ],
)
def test_only_the_rightful_party_may_act(make: Factory, action, who):
    campaign = make.campaign(status="pending" if action in ("accept", "reject") else "accepted")
    before = campaign.status
    user = {
        "advertiser": advertiser_of(make.session, campaign),
        "owner": owner_of(make.session, campaign),
        "admin": make.user("admin"),
    }[who]

    with pytest.raises(Forbidden):
        act(make.session, action, user, campaign.id)

    assert campaign.status == before
    assert owner_of(make.session, campaign).balance == 0


@pytest.mark.parametrize(("state", "action"), ILLEGAL)
def test_every_illegal_transition_is_refused(make: Factory, state, action):
    campaign = make.campaign(status=state)
    balance = owner_of(make.session, campaign).balance
    notices = make.session.scalar(select(func.count()).select_from(Notification))

    with pytest.raises(InvalidTransition) as caught:
        act(make.session, action, rightful_actor(make.session, campaign, action), campaign.id)

    error = caught.value
    assert (error.status, error.code) == (409, "invalid_transition")
    assert error.details == {"from": state, "to": TARGET[action]}
    assert state in error.message and TARGET[action] in error.message
    assert campaign.status == state
    assert owner_of(make.session, campaign).balance == balance
    assert make.session.scalar(select(func.count()).select_from(Notification)) == notices


# --- races ----------------------------------------------------------------------------


def test_two_completions_at_once_pay_out_exactly_once(db: Database, make: Factory):
    campaign = make.campaign(price=10_000, status="accepted")
    campaign_id, advertiser_id = campaign.id, campaign.advertiser_id
    owner_id = campaign.channel.owner_id
    make.session.commit()

    def complete(barrier):
        with db.scope() as session:
            barrier.wait(timeout=10)
            advertiser = session.get_one(User, advertiser_id)
            return campaigns.complete(session, advertiser, campaign_id, FEE_PERCENT).payout

    outcomes = race(complete, complete)

    payouts = [o for o in outcomes if not isinstance(o, Exception)]
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert payouts == [9_000], outcomes
    [error] = errors
    assert isinstance(error, InvalidTransition), error
    assert error.details == {"from": "completed", "to": "completed"}
    assert balance_of(db, owner_id) == 9_000
    with db.scope() as session:
        paid = select(func.count()).where(Notification.type == "campaign_completed")
        assert session.scalar(paid) == 1


def test_completions_of_one_owner_s_campaigns_at_once_all_reach_the_balance(
    db: Database, make: Factory
):
    channel = make.channel(price=1_000)
    owner_id = channel.owner_id
    accepted = [make.campaign(channel=channel, status="accepted") for _ in range(4)]
    jobs = [(c.id, c.advertiser_id) for c in accepted]
    make.session.commit()

    def completer(campaign_id, advertiser_id):
        def complete(barrier):
            with db.scope() as session:
                barrier.wait(timeout=10)
                advertiser = session.get_one(User, advertiser_id)
                campaigns.complete(session, advertiser, campaign_id, FEE_PERCENT)

        return complete

    outcomes = race(*(completer(*job) for job in jobs))

    assert outcomes == [None] * 4
    assert balance_of(db, owner_id) == 4 * 900


def test_a_completion_pays_onto_the_balance_as_it_is_under_the_lock(
    db: Database, make: Factory, postgres_only
):
    """The owner row read before the lock (the campaign's joined load) must not be trusted."""
    channel = make.channel(price=1_000)
    first = make.campaign(channel=channel, status="accepted")
    second = make.campaign(channel=channel, status="accepted")
    make.session.commit()

    with db.sessions() as late:
        advertiser = late.get_one(User, second.advertiser_id)
        seen = campaigns.get_campaign(late, advertiser, second.id)
        assert seen.channel.owner.balance == 0
        with db.scope() as early:
            campaigns.complete(
                early, early.get_one(User, first.advertiser_id), first.id, FEE_PERCENT
            )
        campaigns.complete(late, advertiser, second.id, FEE_PERCENT)
        late.commit()

    assert balance_of(db, channel.owner_id) == 2 * 900


def test_a_completion_sees_the_campaign_state_as_it_is_under_the_lock(
    db: Database, make: Factory, postgres_only
):
    """A campaign read earlier in the transaction must not be completed (and paid) twice."""
    campaign = make.campaign(price=1_000, status="accepted")
    make.session.commit()

    with db.sessions() as late:
        advertiser = late.get_one(User, campaign.advertiser_id)
        seen = campaigns.get_campaign(late, advertiser, campaign.id)
        assert seen.status == "accepted"
        with db.scope() as early:
            early_advertiser = early.get_one(User, campaign.advertiser_id)
            campaigns.complete(early, early_advertiser, campaign.id, FEE_PERCENT)
        with pytest.raises(InvalidTransition):
            campaigns.complete(late, advertiser, campaign.id, FEE_PERCENT)

    assert balance_of(db, campaign.channel.owner_id) == 900
