"""The campaign lifecycle over REST."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from core.db import session_scope
from core.models import Campaign, User
from core.services import campaigns
from core.services.money import to_minor
from web.auth import actor, auth_required
from web.schemas import CampaignIn, CampaignOut, CampaignQuery

blp = Blueprint("campaigns", __name__, url_prefix="/api/campaigns", description="Campaigns")
SECURITY = [{"bearer": []}]


@blp.route("", methods=["POST"])
@auth_required
@blp.arguments(CampaignIn())
@blp.response(201, CampaignOut)
@blp.doc(security=SECURITY)
def create(body: dict[str, Any]) -> Campaign:
    """Request a placement in a channel (advertisers only); the owner is notified."""
    price = body.get("price")
    # One read and one write statement (core/services/notification_writes.py): no transaction.
    with session_scope(autocommit=True) as session:
        return campaigns.create_campaign(
            session,
            g.user_id,
            channel_id=body["channel_id"],
            title=body["title"],
            content=body["content"],
            price=to_minor(price) if price is not None else None,
        )


@blp.route("", methods=["GET"])
@auth_required
@blp.arguments(CampaignQuery(), location="query")
@blp.response(200, CampaignOut(many=True))
@blp.doc(security=SECURITY)
def list_all(query: dict[str, Any]) -> Sequence[Campaign]:
    """The campaigns the caller is a party to."""
    with session_scope() as session:
        return campaigns.list_campaigns(session, actor(session), query.get("status"))


@blp.route("/<campaign_id>", methods=["GET"])
@auth_required
@blp.response(200, CampaignOut)
@blp.doc(security=SECURITY)
def get_one(campaign_id: str) -> Campaign:
    """One campaign the caller is a party to."""
    with session_scope() as session:
        return campaigns.get_campaign(session, actor(session), campaign_id)


def _act(campaign_id: str, action: Callable[[Session, User, str], Campaign]) -> Campaign:
    """Run one lifecycle action in its own transaction."""
    with session_scope() as session:
        return action(session, actor(session), campaign_id)


@blp.route("/<campaign_id>/accept", methods=["POST"])
@auth_required
@blp.response(200, CampaignOut)
@blp.doc(security=SECURITY)
def accept(campaign_id: str) -> Campaign:
    """The channel's owner accepts; the advertiser is notified."""
    return _act(campaign_id, campaigns.accept)


@blp.route("/<campaign_id>/reject", methods=["POST"])
@auth_required
@blp.response(200, CampaignOut)
@blp.doc(security=SECURITY)
def reject(campaign_id: str) -> Campaign:
    """The channel's owner rejects; the advertiser is notified."""
    return _act(campaign_id, campaigns.reject)


@blp.route("/<campaign_id>/complete", methods=["POST"])
@auth_required
@blp.response(200, CampaignOut)
@blp.doc(security=SECURITY)
def complete(campaign_id: str) -> Campaign:
    """The advertiser (or an admin) completes; the owner is paid out and notified."""
    fee = current_app.config["SETTINGS"].PLATFORM_FEE_PERCENT
    return _act(campaign_id, lambda s, u, c: campaigns.complete(s, u, c, fee))


@blp.route("/<campaign_id>/cancel", methods=["POST"])
@auth_required
@blp.response(200, CampaignOut)
@blp.doc(security=SECURITY)
def cancel(campaign_id: str) -> Campaign:
    """The advertiser cancels an accepted campaign."""
    return _act(campaign_id, campaigns.cancel)
