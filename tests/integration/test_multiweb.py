"""Two web processes joined by the Redis message queue both deliver, and both count."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.flows import create_campaign, create_channel
from tests.support.stack import Stack

# Two web processes joined by Redis, counting sockets in Redis; the database only stores.
pytestmark = pytest.mark.one_backend


def _websocket(stack: Stack, i: int) -> dict[str, Any]:
    """The websocket counts that web process `i` reports in /health."""
    return stack.api(i).get("/health").json()["websocket"]


def test_two_web_processes_deliver_and_count(module_stack: Stack) -> None:
    """A user's tabs on two web processes both get the notification; /health sums both."""
    stack = module_stack.start(web=2, workers=1)
    api = stack.api(0)
    owner, advertiser = api.register(role="channel_owner"), api.register(role="advertiser")
    before = _websocket(stack, 0)
    tab_a = stack.live(owner.access_token, i=0)
    tab_b = stack.live(owner.access_token, i=1)
    other = stack.live(advertiser.access_token, i=1)

    expected = {
        "connections": before["connections"] + 3,
        "users": before["users"] + 2,
    }
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _websocket(stack, 1) != expected:
        time.sleep(0.1)
    assert _websocket(stack, 0) == expected
    assert _websocket(stack, 1) == expected

    campaign = create_campaign(api, advertiser, create_channel(api, owner)["id"])
    for tab in (tab_a, tab_b):
        event = tab.wait_for(lambda n: n["type"] == "new_campaign", timeout=5)
        assert event["campaign_id"] == campaign["id"]

    other.disconnect()
    tab_b.disconnect()
    expected = {"connections": before["connections"] + 1, "users": before["users"] + 1}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _websocket(stack, 0) != expected:
        time.sleep(0.1)
    assert _websocket(stack, 0) == expected
