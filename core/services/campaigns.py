"""The campaign lifecycle: create, accept, reject, complete (payout), cancel."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.orm import Session

from core.db import adopt, read_reconnecting
from core.models import Campaign, Channel, User
from core.models.base import new_id, utcnow
from core.services import notification_writes
from core.services.errors import Forbidden, InvalidTransition, NotFound, Unauthorized
from core.services.money import fee_of, format_minor
from core.services.notification_writes import RECIPIENT_COLUMNS, RecipientRow
from core.services.notifications import notify

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
            *(owner.c[name].label(f"owner_{name}") for name in RECIPIENT_COLUMNS),
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
    owner = RecipientRow(**{name: row._mapping[f"owner_{name}"] for name in RECIPIENT_COLUMNS})
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
    if to not in TRANSITIONS[campaign.status]:
        raise InvalidTransition(
            f"cannot move a {campaign.status} campaign to {to}",
            details={"from": campaign.status, "to": to},
        )
    campaign.status = to
    campaign.updated_at = utcnow()


def _owner_decides(session: Session, user: User, campaign_id: str, to: str) -> Campaign:
    """Accept or reject as the channel's owner, notifying the advertiser."""
    campaign = get_campaign(session, user, campaign_id, lock=True)
    if campaign.channel.owner_id != user.id:
        raise Forbidden("only the channel's owner can decide on a campaign")
    _move(campaign, to)
    advertiser = session.get_one(User, campaign.advertiser_id)
    notify(
        session,
        advertiser,
        f"campaign_{to}",
        _snapshot(campaign, campaign.channel.name, advertiser.name),
        campaign_id=campaign.id,
    )
    return campaign


def accept(session: Session, user: User, campaign_id: str) -> Campaign:
    """The channel's owner accepts a pending campaign."""
    return _owner_decides(session, user, campaign_id, "accepted")


def reject(session: Session, user: User, campaign_id: str) -> Campaign:
    """The channel's owner rejects a pending campaign."""
    return _owner_decides(session, user, campaign_id, "rejected")


def complete(session: Session, user: User, campaign_id: str, fee_percent: Decimal) -> Campaign:
    """The advertiser (or an admin) completes an accepted campaign; the owner is paid out."""
    campaign = get_campaign(session, user, campaign_id, lock=True)
    if user.role != "admin" and campaign.advertiser_id != user.id:
        raise Forbidden("only the advertiser or an admin can complete a campaign")
    _move(campaign, "completed")
    campaign.fee = fee_of(campaign.price, fee_percent)
    campaign.payout = campaign.price - campaign.fee
    campaign.completed_at = campaign.updated_at
    # The owner was loaded (unlocked) with the campaign; re-read the balance under the lock,
    # or two payouts to one owner at once would each add to the same stale balance.
    owner = session.scalars(
        select(User)
        .where(User.id == campaign.channel.owner_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    owner.balance += campaign.payout
    advertiser = session.get_one(User, campaign.advertiser_id)
    data = _snapshot(campaign, campaign.channel.name, advertiser.name)
    data.update(payout=format_minor(campaign.payout), fee=format_minor(campaign.fee))
    notify(session, owner, "campaign_completed", data, campaign_id=campaign.id)
    return campaign


def cancel(session: Session, user: User, campaign_id: str) -> Campaign:
    """The advertiser cancels an accepted campaign."""
    campaign = get_campaign(session, user, campaign_id, lock=True)
    if campaign.advertiser_id != user.id:
        raise Forbidden("only the advertiser can cancel a campaign")
    _move(campaign, "cancelled")
    return campaign
