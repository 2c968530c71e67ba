"""Channels: owners create them, everyone signed in lists them."""

from __future__ import annotations

import pytest

from core.services import channels
from core.services.errors import Forbidden, NotFound
from tests.core.conftest import Factory


def test_an_owner_creates_a_channel(make: Factory):
    owner = make.user("channel_owner")

    channel = channels.create_channel(
        make.session, owner, name="Tech News", platform="telegram", url="https://t.me/x", price=500
    )

    assert channels.get_channel(make.session, channel.id) is channel
    assert (channel.owner_id, channel.price) == (owner.id, 500)


@pytest.mark.parametrize("role", ["advertiser", "admin"])
def test_only_channel_owners_create_channels(make: Factory, role):
    with pytest.raises(Forbidden):
        make.channel(make.user(role))


def test_list_is_everyone_s_or_one_owner_s(make: Factory):
    owner = make.user("channel_owner")
    mine = make.channel(owner)
    theirs = make.channel()

    assert {c.id for c in channels.list_channels(make.session)} == {mine.id, theirs.id}
    assert [c.id for c in channels.list_channels(make.session, owner_id=owner.id)] == [mine.id]


def test_an_unknown_channel_is_not_found(session):
    with pytest.raises(NotFound) as caught:
        channels.get_channel(session, "missing")

    assert caught.value.details == {"channel_id": "missing"}
