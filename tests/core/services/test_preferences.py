"""Preferences per type and channel: defaults from the registry, opt-outs, required types."""

from __future__ import annotations

import pytest

from core import notification_types
from core.models.base import utcnow
from core.services import notifications, preferences
from core.services.errors import Unprocessable
from tests.core.conftest import Factory

CAMPAIGN = {
    "campaign_title": "Sale",
    "channel_name": "News",
    "advertiser_name": "Acme",
    "price": "1500.00",
    "payout": "1350.00",
    "fee": "150.00",
}


def grid(user) -> dict[str, dict[str, bool]]:
    """The user's grid as {type: channels}."""
    return {row["type"]: row["channels"] for row in preferences.describe(user)}


def channels_of(notification) -> dict[str, str]:
    """{channel: status} of a notification's deliveries, but the messengers nobody linked."""
    return {d.channel: d.status for d in notification.deliveries if d.channel in ("inbox", "email")}


def test_the_grid_lists_the_role_s_types_with_the_registry_defaults(make: Factory):
    owner = make.user("channel_owner")

    rows = {row["type"]: row for row in preferences.describe(owner)}

    assert list(rows) == [t.name for t in notification_types.for_role("channel_owner")]
    assert "campaign_accepted" not in rows and "withdrawal_reminder" not in rows
    assert rows["new_campaign"]["channels"] == {"email": True, "telegram": True, "vk": True}
    assert rows["campaign_completed"]["required"] is True
    assert rows["broadcast"] == {
        "type": "broadcast",
        "label": "Announcements from the marketplace",
        "required": False,
        "available": [],
        "channels": {"email": False, "telegram": False, "vk": False},
    }


def test_turning_email_off_keeps_the_inbox_and_changes_only_what_is_named(make: Factory):
    owner = make.user("channel_owner")
    preferences.update(
        make.session, owner.id, [{"type": "new_campaign", "channels": {"email": False}}]
    )

    assert grid(owner)["new_campaign"] == {"email": False, "telegram": True, "vk": True}
    assert grid(owner)["withdrawal_processed"]["email"] is True
    quiet = notifications.notify(make.session, owner, "new_campaign", CAMPAIGN)
    assert channels_of(quiet) == {"inbox": "pending"}

    preferences.update(
        make.session, owner.id, [{"type": "new_campaign", "channels": {"email": True}}]
    )
    assert owner.notification_prefs == {}
    loud = notifications.notify(make.session, owner, "new_campaign", CAMPAIGN)
    assert channels_of(loud) == {"inbox": "pending", "email": "pending"}


def test_a_required_type_cannot_be_turned_off_and_ignores_opt_outs(make: Factory):
    owner = make.user("channel_owner")

    with pytest.raises(Unprocessable, match="campaign_completed.email") as refused:
        preferences.update(
            make.session, owner.id, [{"type": "campaign_completed", "channels": {"email": False}}]
        )
    assert refused.value.status == 422
    assert preferences.opt_out(make.session, owner.id) is True  # every optional email off
    assert grid(owner)["campaign_completed"]["email"] is True
    payout = notifications.notify(make.session, owner, "campaign_completed", CAMPAIGN)
    assert channels_of(payout) == {"inbox": "pending", "email": "pending"}
    assert channels_of(notifications.notify(make.session, owner, "new_campaign", CAMPAIGN)) == {
        "inbox": "pending"
    }
    assert preferences.opt_out(make.session, owner.id) is False  # nothing left to change


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ([{"type": "no_such_type", "channels": {"email": False}}], "no_such_type"),
        ([{"type": "campaign_accepted", "channels": {"email": False}}], "campaign_accepted"),
        ([{"type": "new_campaign", "channels": {"sms": False}}], "new_campaign.sms"),
        ([{"type": "broadcast", "channels": {"email": True}}], "broadcast.email"),
    ],
)
def test_bad_changes_are_refused_whole_naming_each_problem(make: Factory, changes, named):
    owner = make.user("channel_owner")
    valid = {"type": "new_campaign", "channels": {"email": False}}

    with pytest.raises(Unprocessable, match=named.replace(".", r"\.")) as refused:
        preferences.update(make.session, owner.id, [valid, *changes])

    assert refused.value.details["problems"]
    assert grid(owner)["new_campaign"]["email"] is True  # all or nothing


def test_an_undeliverable_address_gets_a_suppressed_row_and_no_dispatch(make: Factory):
    owner = make.user("channel_owner")
    owner.email_undeliverable_at = utcnow()
    owner.email_undeliverable_reason = "bounce: 550 no such user"

    notification = notifications.notify(make.session, owner, "campaign_completed", CAMPAIGN)

    email = next(d for d in notification.deliveries if d.channel == "email")
    assert email.status == "suppressed" and "550 no such user" in (email.error or "")
    # Only the inbox push waits for the commit to be enqueued.
    assert list(make.session.info["dispatch"]) == ["inbox"]
