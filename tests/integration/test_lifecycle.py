"""The campaign lifecycle reaches the right users' sockets, on one web and one worker."""

from __future__ import annotations

import time

from tests.support.flows import act, create_campaign, create_channel
from tests.support.stack import Stack


def test_lifecycle_notifies_the_right_sockets(module_stack: Stack) -> None:
    """Owner (two tabs) hears of the request and payout; the advertiser of the acceptance."""
    stack = module_stack.start(web=1, workers=1)
    api = stack.api()
    owner = api.register(role="channel_owner", locale="en")
    advertiser = api.register(role="advertiser", locale="ru")
    owner_tab1, owner_tab2 = stack.live(owner.access_token), stack.live(owner.access_token)
    advertiser_tab = stack.live(advertiser.access_token)
    channel = create_channel(api, owner, price="100.00")

    campaign = create_campaign(api, advertiser, channel["id"])
    for tab in (owner_tab1, owner_tab2):
        event = tab.wait_for(lambda n: n["type"] == "new_campaign", timeout=5)
        assert event["campaign_id"] == campaign["id"]
        assert event["title"] == "New placement request"
        assert event["timestamp"].endswith("Z")

    act(api, owner, campaign["id"], "accept")
    accepted = advertiser_tab.wait_for(lambda n: n["type"] == "campaign_accepted", timeout=5)
    assert accepted["title"] == "Заявка принята"  # the advertiser's locale is Russian

    done = act(api, advertiser, campaign["id"], "complete")
    assert (done["status"], done["fee"], done["payout"]) == ("completed", "10.00", "90.00")
    paid = owner_tab1.wait_for(lambda n: n["type"] == "campaign_completed", timeout=5)
    assert paid["data"]["payout"] == "90.00"
    owner_tab2.wait_for(lambda n: n["type"] == "campaign_completed", timeout=5)
    assert api.as_user(owner).get("/api/users/me").json()["balance"] == "90.00"

    # Nobody hears of what is not theirs.
    time.sleep(0.5)
    assert {n["type"] for n in advertiser_tab.notifications} == {"campaign_accepted"}
    assert {n["type"] for n in owner_tab1.notifications} == {"new_campaign", "campaign_completed"}


def test_rejection_reaches_the_advertiser(module_stack: Stack) -> None:
    """A rejected request is a live notification to the advertiser, with no payout."""
    stack = module_stack.start(web=1, workers=1)
    api = stack.api()
    owner, advertiser = api.register(role="channel_owner"), api.register(role="advertiser")
    tab = stack.live(advertiser.access_token)
    campaign = create_campaign(api, advertiser, create_channel(api, owner)["id"])
    act(api, owner, campaign["id"], "reject")
    event = tab.wait_for(lambda n: n["type"] == "campaign_rejected", timeout=5)
    assert event["campaign_id"] == campaign["id"]


def test_ping_pong(module_stack: Stack) -> None:
    """`ping` is answered by `pong` echoing the client's timestamp with the server's time."""
    stack = module_stack.start(web=1, workers=1)
    user = stack.api().register()
    client = stack.live(user.access_token)
    client.sio.emit("ping", {"timestamp": 12345})
    pong = client.wait_for(lambda _: True, event="pong", timeout=5)
    assert pong["timestamp"] == 12345
    assert pong["server_time"].endswith("Z")


def test_catch_up_after_offline(module_stack: Stack) -> None:
    """20 notifications made while offline arrive on reconnect with last_seq, in order."""
    stack = module_stack.start(web=1, workers=1)
    api = stack.api()
    owner, advertiser = api.register(role="channel_owner"), api.register(role="advertiser")
    channel = create_channel(api, owner)
    first = stack.live(owner.access_token, last_seq=0)
    backlog = first.wait_for_count(1, timeout=5)  # the welcome notification
    last_seq = max(n["seq"] for n in backlog)
    first.disconnect()

    for i in range(20):
        create_campaign(api, advertiser, channel["id"], title=f"Offline {i}")

    again = stack.live(owner.access_token, last_seq=last_seq)
    received = again.wait_for_count(20, timeout=10)
    seqs = [n["seq"] for n in received[:20]]
    assert seqs == list(range(last_seq + 1, last_seq + 21))
    assert [n["title"] for n in received[:20]] == ["New placement request"] * 20

    rest = api.as_user(owner).get(f"/api/notifications?after_seq={last_seq}&limit=100").json()
    assert [n["seq"] for n in rest] == seqs


def test_broadcast_reaches_everyone_connected(module_stack: Stack) -> None:
    """A broadcast is answered at once, stored for every user, pushed to each connected one."""
    stack = module_stack.start(web=1, workers=1)
    admin = stack.create_admin()
    users = [stack.api().register() for _ in range(4)]
    tabs = [stack.live(u.access_token) for u in users[:3]]
    away = users[3]
    admin_api = stack.api().as_user(admin)
    response = admin_api.post(
        "/api/admin/broadcast", json={"title": "Maintenance", "message": "Tonight at 2"}
    )
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "queued" and queued["recipients"] >= 5
    for tab in tabs:
        event = tab.wait_for(lambda n: n["type"] == "broadcast", timeout=10)
        assert (event["title"], event["message"]) == ("Maintenance", "Tonight at 2")
    progress = admin_api.get(f"/api/admin/broadcasts/{queued['id']}").json()
    deadline = time.monotonic() + 10
    while progress["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
        progress = admin_api.get(f"/api/admin/broadcasts/{queued['id']}").json()
    assert progress["status"] == "done", progress
    assert progress["stored"] == progress["recipients"] and progress["pushed"] >= 3, progress
    # Someone who was away reads it on their next connection, by seq.
    later = stack.live(away.access_token, last_seq=0)
    later.wait_for(lambda n: n["type"] == "broadcast" and n["title"] == "Maintenance", timeout=10)
    # Only admins see progress; an unknown id is a 404.
    assert stack.api().as_user(away).get(f"/api/admin/broadcasts/{queued['id']}").status_code == 403
    assert admin_api.get("/api/admin/broadcasts/nope").status_code == 404
