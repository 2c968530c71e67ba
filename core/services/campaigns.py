"""The campaign lifecycle: create, accept, reject, complete (payout), cancel."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, or_, select
from sqlalchemy.orm import Session

from core.db import adopt, as_changed, read_reconnecting
from core.models import Campaign, Channel, User
from core.models.base import new_id, utcnow
from core.services import balances, notification_writes
from core.services.errors import Forbidden, InvalidTransition, NotFound, Unauthorized
from core.services.money import fee_of, format_minor
from core.services.notification_writes import RecipientRow

# from-state -> allowed to-states
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"accepted", "rejected"}),
    "accepted": frozenset({"completed", "cancelled"}),
    "rejected": frozenset(),
    "completed": frozenset(),
    "cancelled": frozenset(),
}


def _snapshot(campaign: Campaign, channel_name: str, advertiser_name: str) -> dict[str, Any]:
    """What notifications about this campaign say, frozen at the moment they are written."""
    return {
        "campaign_id": campaign.id,
        "campaign_title": campaign.title,
        "channel_id": campaign.channel_id,
        "channel_name": channel_name,
        "advertiser_name": advertiser_name,
        "price": format_minor(campaign.price),
    }


@cache
def _creation_context() -> Select[Any]:
    """The advertiser, the channel and its owner in one query (the API path's only read).

    Built once, with parameters `advertiser_id` and `channel_id` (see notification_writes).
    """
    users, channels = User.__table__, Channel.__table__
    advertiser_id, channel_id = bindparam("advertiser_id"), bindparam("channel_id")
    owner = users.alias("owner")
    return (
        select(
            users.c.role,
            users.c.name,
            channels.c.id.label("channel_id"),
            channels.c.name.label("channel_name"),
            channels.c.price.label("channel_price"),
            *RecipientRow.columns(owner, "owner_"),
        )
        .select_from(
            users.outerjoin(channels, channels.c.id == channel_id).outerjoin(
                owner, owner.c.id == channels.c.owner_id
            )
        )
        .where(users.c.id == advertiser_id)
    )


def create_campaign(
    session: Session,
    advertiser_id: str,
    *,
    channel_id: str,
    title: str,
    content: str,
    price: int | None = None,
) -> Campaign:
    """Request a placement in a channel and notify its owner: one read, then one write."""
    session.flush()
    row = read_reconnecting(
        session, _creation_context(), {"advertiser_id": advertiser_id, "channel_id": channel_id}
    )
    if row is None:
        raise Unauthorized("user no longer exists", code="token_invalid")
    if row.role != "advertiser":
        raise Forbidden("this requires the role advertiser")
    if row.channel_id is None:
        raise NotFound("channel not found", details={"channel_id": channel_id})
    now = utcnow()
    values = {
        "id": new_id(),
        "advertiser_id": advertiser_id,
        "channel_id": channel_id,
        "title": title,
        "content": content,
        "price": price if price is not None else row.channel_price,
        "status": "pending",
        "fee": None,
        "payout": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }
    campaign = Campaign(**values)
    owner = RecipientRow.from_row(row, "owner_")
    planned = notification_writes.plan(
        owner,
        "new_campaign",
        _snapshot(campaign, row.channel_name, row.name),
        campaign_id=campaign.id,
    )
    # The campaign's INSERT rides in the notification's statement (one round trip to write).
    domain = notification_writes.DomainRow(Campaign.__table__, values)
    notification_writes.write_in_session(session, [planned], before=[domain])
    adopt(session, campaign)
    return campaign


def _visible(query: Any, user: User) -> Any:
    """Restrict a campaign query to those the user is a party to (admins see all)."""
    if user.role == "admin":
        return query
    return query.join(Channel, Campaign.channel_id == Channel.id).where(
        or_(Campaign.advertiser_id == user.id, Channel.owner_id == user.id)
    )


def list_campaigns(session: Session, user: User, status: str | None = None) -> Sequence[Campaign]:
    """The campaigns the user is a party to, newest first."""
    query = _visible(select(Campaign), user)
    if status:
        query = query.where(Campaign.status == status)
    return session.scalars(query.order_by(Campaign.created_at.desc())).unique().all()


def get_campaign(session: Session, user: User, campaign_id: str, *, lock: bool = False) -> Campaign:
    """One campaign the user is a party to; any other is NotFound."""
    query = _visible(select(Campaign), user).where(Campaign.id == campaign_id)
    if lock:
        # populate_existing: the locked row's values replace any read earlier in the session.
        query = query.with_for_update(of=Campaign).execution_options(populate_existing=True)
    campaign = session.scalars(query).unique().one_or_none()
    if campaign is None:
        raise NotFound("campaign not found", details={"campaign_id": campaign_id})
    return campaign


def _move(campaign: Campaign, to: str) -> None:
    """Change the state, refusing transitions the lifecycle does not allow."""
    _check_move(campaign.status, to)
    campaign.status = to
    campaign.updated_at = utcnow()


def _check_move(status: str, to: str) -> None:
    """Refuse a transition the lifecycle does not allow."""
    if to not in TRANSITIONS[status]:
        raise InvalidTransition(
            f"cannot move a {status} campaign to {to}", details={"from": status, "to": to}
        )


CAMPAIGNS = Campaign.__table__


@cache
def _decision_context() -> Select[Any]:
    """The campaign (row locked), its channel, and both parties as recipients, in one query.

    Built once, with the parameter `campaign_id`; SQLite ignores the lock (its BEGIN IMMEDIATE
    already holds the whole database).
    """
    users, channels = User.__table__, Channel.__table__
    owner, advertiser = users.alias("owner"), users.alias("advertiser")
    parties = [
        column
        for party in (owner, advertiser)
        for column in RecipientRow.columns(party, f"{party.name}_recipient_")
    ]
    return (
        select(
            *CAMPAIGNS.c,
            channels.c.owner_id,
            channels.c.name.label("channel_name"),
            advertiser.c.name.label("advertiser_name"),
            *parties,
        )
        .join_from(CAMPAIGNS, channels, channels.c.id == CAMPAIGNS.c.channel_id)
        .join(owner, owner.c.id == channels.c.owner_id)
        .join(advertiser, advertiser.c.id == CAMPAIGNS.c.advertiser_id)
        .where(CAMPAIGNS.c.id == bindparam("campaign_id"))
        .with_for_update(of=CAMPAIGNS)
    )


def _decision(session: Session, user: User, campaign_id: str) -> Row[Any]:
    """The locked campaign with its parties; NotFound unless the user is a party (or admin)."""
    row = session.execute(_decision_context(), {"campaign_id": campaign_id}).first()
    if row is None or (user.role != "admin" and user.id not in (row.owner_id, row.advertiser_id)):
        raise NotFound("campaign not found", details={"campaign_id": campaign_id})
    return row


def _recipient(row: Row[Any], party: str) -> RecipientRow:
    """The owner or the advertiser of a _decision row, as a notification's recipient."""
    return RecipientRow.from_row(row, f"{party}_recipient_")


def _notify_decision(
    session: Session,
    row: Row[Any],
    changes: dict[str, Any],
    recipient: str,
    notification_type: str,
    extra: dict[str, str] | None = None,
) -> Campaign:
    """Write the campaign's changes and the party's notification in one statement."""
    campaign = as_changed(session, Campaign, row, changes)
    data = {**_snapshot(campaign, row.channel_name, row.advertiser_name), **(extra or {})}
    planned = notification_writes.plan(
        _recipient(row, recipient), notification_type, data, campaign_id=campaign.id
    )
    domain = notification_writes.DomainRow(CAMPAIGNS, changes, id=campaign.id)
    notification_writes.write_in_session(session, [planned], before=[domain])
    return campaign


def _owner_decides(session: Session, user: User, campaign_id: str, to: str) -> Campaign:
    """Accept or reject as the channel's owner, notifying the advertiser."""
    row = _decision(session, user, campaign_id)
    if row.owner_id != user.id:
        raise Forbidden("only the channel's owner can decide on a campaign")
    _check_move(row.status, to)
    changes = {"status": to, "updated_at": utcnow()}
    return _notify_decision(session, row, changes, "advertiser", f"campaign_{to}")


def accept(session: Session, user: User, campaign_id: str) -> Campaign:
    """The channel's owner accepts a pending campaign."""
    return _owner_decides(session, user, campaign_id, "accepted")


def reject(session: Session, user: User, campaign_id: str) -> Campaign:
    """The channel's owner rejects a pending campaign."""
    return _owner_decides(session, user, campaign_id, "rejected")


def complete(session: Session, user: User, campaign_id: str, fee_percent: Decimal) -> Campaign:
    """The advertiser (or an admin) completes an accepted campaign; the owner is paid out."""
    row = _decision(session, user, campaign_id)
    if user.role != "admin" and row.advertiser_id != user.id:
        raise Forbidden("only the advertiser or an admin can complete a campaign")
    _check_move(row.status, "completed")
    fee = fee_of(row.price, fee_percent)
    payout = row.price - fee
    now = utcnow()
    balances.credit(session, row.owner_id, payout)
    changes = {"status": "completed", "fee": fee, "payout": payout, "updated_at": now,
               "completed_at": now}  # fmt: skip
    extra = {"payout": format_minor(payout), "fee": format_minor(fee)}
    return _notify_decision(session, row, changes, "owner", "campaign_completed", extra)


def cancel(session: Session, user: User, campaign_id: str) -> Campaign:
    """The advertiser cancels an accepted campaign."""
    campaign = get_campaign(session, user, campaign_id, lock=True)
    if campaign.advertiser_id != user.id:
        raise Forbidden("only the advertiser can cancel a campaign")
    _move(campaign, "cancelled")
    return campaign
