"""Users decide what reaches them: preferences, one-click unsubscribe and bounces, end to end.

Real web and worker processes, the SendGrid stand-in counting what reaches it, and a real
Socket.IO client: what a user turns off is not emailed, and still arrives live and in the inbox.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.integration.test_email import KEY, email_env, start, wait_until
from tests.support.clients import Account, Api, LiveClient
from tests.support.fake_sendgrid import Accepted, FakeSendGrid
from tests.support.flows import act, create_campaign, create_channel
from tests.support.stack import Stack

WAIT = 30.0


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    """The SendGrid stand-in the stack's workers send to."""
    with FakeSendGrid(api_key=KEY) as server:
        yield server


def emails_to(fake: FakeSendGrid, api: Api, who: Account, kind: str) -> list[Accepted]:
    """The accepted emails of one notification type to one user, by our custom args."""
    inbox = api.as_user(who).get("/api/notifications", params={"limit": 500}).json()
    ids = {n["id"] for n in inbox if n["type"] == kind}
    return [m for m in fake.messages() if m.custom_args.get("notification_id") in ids]


def timeline(api: Api, who: Account, notification_id: str) -> dict[str, dict]:
    """GET /api/notifications/<id>: its deliveries by channel."""
    answer = api.as_user(who).get(f"/api/notifications/{notification_id}")
    assert answer.status_code == 200, answer.text
    return {d["channel"]: d for d in answer.json()["deliveries"]}


def latest(api: Api, who: Account, kind: str) -> dict:
    """The user's newest notification of a type."""
    inbox = api.as_user(who).get("/api/notifications").json()
    return next(n for n in inbox if n["type"] == kind)


def settled(api: Api, who: Account, notification_id: str) -> bool:
    """Every delivery of the notification reached a final state."""
    states = timeline(api, who, notification_id).values()
    return all(d["status"] in ("sent", "failed", "suppressed", "skipped") for d in states)


def set_email(api: Api, who: Account, kind: str, on: bool) -> dict:
    """PATCH one cell of the grid; returns the row as the answer shows it."""
    body = {"preferences": [{"type": kind, "channels": {"email": on}}]}
    answer = api.as_user(who).request("PATCH", "/api/users/me/preferences", json=body)
    assert answer.status_code == 200, answer.text
    return next(p for p in answer.json()["preferences"] if p["type"] == kind)


def parties(api: Api) -> tuple[Account, Account, str]:
    """An English-speaking owner with a channel, and an advertiser; returns the channel id."""
    owner = api.register(role="channel_owner", locale="en")
    advertiser = api.register(role="advertiser", locale="en")
    return owner, advertiser, create_channel(api, owner, price="1500.00")["id"]


def test_email_off_still_arrives_live_and_in_the_inbox_and_on_again_resumes(
    make_stack: Callable[..., Stack], fake: FakeSendGrid
) -> None:
    stack = make_stack(extra_env=email_env(fake))
    api = start(stack, fake, web=1, workers=1)
    owner, advertiser, channel_id = parties(api)
    assert set_email(api, owner, "new_campaign", False)["channels"]["email"] is False

    with LiveClient(stack.base_url(), owner.access_token) as live:
        quiet = create_campaign(api, advertiser, channel_id, title="Quiet one")
        pushed = live.wait_for(lambda n: n.get("campaign_id") == quiet["id"], timeout=WAIT)
    assert pushed["type"] == "new_campaign" and "RUB\xa01,500.00" in pushed["message"]
    quiet_note = latest(api, owner, "new_campaign")
    assert quiet_note["id"] == pushed["id"]
    quiet_timeline = timeline(api, owner, quiet_note["id"])
    assert sorted(quiet_timeline) == ["inbox", "telegram", "vk"]  # no email row at all
    assert quiet_timeline["telegram"]["status"] == "skipped"  # not linked: recorded as such
    assert quiet_timeline["telegram"]["last_error"] == "no telegram account linked"

    assert set_email(api, owner, "new_campaign", True)["channels"]["email"] is True
    loud = create_campaign(api, advertiser, channel_id, title="Loud one")
    wait_until(lambda: len(emails_to(fake, api, owner, "new_campaign")) >= 1, WAIT, "the email")
    loud_note = latest(api, owner, "new_campaign")
    wait_until(lambda: settled(api, owner, loud_note["id"]), WAIT, "the deliveries to settle")
    time.sleep(1.0)  # anything else on its way would be at the stand-in by now

    (sent,) = emails_to(fake, api, owner, "new_campaign")
    assert sent.custom_args["notification_id"] == loud_note["id"]
    assert loud_note["campaign_id"] == loud["id"]
    email = timeline(api, owner, loud_note["id"])["email"]
    assert email["status"] == "sent" and email["attempts"] == 1
    assert email["provider_message_id"] == sent.message_id
    assert email["created_at"] and email["finished_at"] and email["last_error"] is None


def test_one_click_unsubscribe_from_a_real_email_stops_that_type_only(
    make_stack: Callable[..., Stack], fake: FakeSendGrid
) -> None:
    stack = make_stack(extra_env=email_env(fake, FRONTEND_URL="https://app.example.test"))
    api = start(stack, fake, web=1, workers=1)
    owner, advertiser, channel_id = parties(api)
    first = create_campaign(api, advertiser, channel_id, title="First")
    wait_until(lambda: len(emails_to(fake, api, owner, "new_campaign")) == 1, WAIT, "the email")
    (message,) = emails_to(fake, api, owner, "new_campaign")

    # RFC 8058: an HTTPS URI in List-Unsubscribe, and List-Unsubscribe-Post one-click.
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"<(https://[^>]+)>", message.headers["List-Unsubscribe"]).group(1)
    assert url in message.content("text/plain") and url.replace("&", "&amp;") in message.content(
        "text/html"
    )
    # The stack serves it at its own address; FRONTEND_URL is the public name of the same app.
    local = stack.base_url() + url.removeprefix("https://app.example.test")
    page = requests.get(local, timeout=10)  # a mail scanner following the link
    assert page.status_code == 200 and "<form" in page.text
    assert set_email(api, owner, "new_campaign", True)["channels"]["email"] is True  # unchanged

    # POSTed as a mail provider does: no cookie, no token, a form body.
    started = time.perf_counter()
    done = requests.post(local, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    took_ms = (time.perf_counter() - started) * 1000
    assert done.status_code == 200, done.text
    again = requests.post(local, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert again.status_code == 200  # idempotent
    grid = {
        p["type"]: p
        for p in api.as_user(owner).get("/api/users/me/preferences").json()["preferences"]
    }
    assert grid["new_campaign"]["channels"]["email"] is False
    assert grid["campaign_completed"]["channels"]["email"] is True
    print(f"one-click POST answered in {took_ms:.1f} ms")

    second = create_campaign(api, advertiser, channel_id, title="Second")
    act(api, owner, first["id"], "accept")
    act(api, advertiser, first["id"], "complete")  # a required email: still sent
    wait_until(
        lambda: len(emails_to(fake, api, owner, "campaign_completed")) == 1,
        WAIT,
        "the payout email",
    )
    second_note = latest(api, owner, "new_campaign")
    assert second_note["campaign_id"] == second["id"]
    wait_until(lambda: settled(api, owner, second_note["id"]), WAIT, "the inbox push")
    assert "email" not in timeline(api, owner, second_note["id"])
    assert len(emails_to(fake, api, owner, "new_campaign")) == 1
    (payout,) = emails_to(fake, api, owner, "campaign_completed")
    assert "List-Unsubscribe" not in payout.headers  # required: no way out but the settings

    for method in ("GET", "POST"):
        forged = requests.request(
            method, local[:-6] + "AAAAAA", headers={"Accept-Language": "en"}, timeout=10
        )
        assert forged.status_code == 400 and "not valid, so nothing was changed" in forged.text
    assert len(emails_to(fake, api, owner, "new_campaign")) == 1


def test_a_bounce_suppresses_later_emails_until_the_address_changes(
    make_stack: Callable[..., Stack], fake: FakeSendGrid
) -> None:
    stack = make_stack(extra_env=email_env(fake))
    api = start(stack, fake, web=1, workers=1)
    owner, advertiser, channel_id = parties(api)
    create_campaign(api, advertiser, channel_id, title="Before the bounce")
    wait_until(lambda: len(emails_to(fake, api, owner, "new_campaign")) == 1, WAIT, "the email")
    (message,) = emails_to(fake, api, owner, "new_campaign")

    bounce = {
        **message.custom_args,
        "event": "bounce",
        "type": "bounce",
        "email": owner.email,
        "reason": "550 5.1.1 The email account does not exist",
        "timestamp": int(time.time()),
        "sg_event_id": uuid.uuid4().hex,
    }
    assert fake.send_events([bounce]).json() == {"recorded": 2}  # the delivery and the user
    assert fake.send_events([bounce]).json() == {"recorded": 0}  # a replay: no second effect
    me = api.as_user(owner).get("/api/users/me").json()
    assert me["email_status"] == "undeliverable"
    assert "550 5.1.1" in me["email_undeliverable_reason"]
    requests_before = len(fake.requests_to(owner.email))

    after = create_campaign(api, advertiser, channel_id, title="After the bounce")
    note = latest(api, owner, "new_campaign")
    assert note["campaign_id"] == after["id"]
    wait_until(lambda: settled(api, owner, note["id"]), WAIT, "the deliveries to settle")
    email = timeline(api, owner, note["id"])["email"]
    assert email["status"] == "suppressed" and "550 5.1.1" in email["last_error"]
    time.sleep(1.0)
    assert len(fake.requests_to(owner.email)) == requests_before  # 0 requests to SendGrid

    new_address = f"fixed-{owner.email}"
    wrong = api.as_user(owner).request(
        "PATCH", "/api/users/me", json={"email": new_address, "password": "wrong-password"}
    )
    assert wrong.status_code == 403
    changed = api.as_user(owner).request(
        "PATCH", "/api/users/me", json={"email": new_address, "password": owner.password}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email_status"] == "ok"
    create_campaign(api, advertiser, channel_id, title="New address")
    wait_until(
        lambda: any(m.to == new_address for m in fake.messages()), WAIT, "mail to the new address"
    )


def test_bad_preferences_and_profile_changes_are_422_naming_them(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.start(web=1, workers=0)
    api = stack.api()
    owner = api.register(role="channel_owner", locale="en")
    me = api.as_user(owner)

    cases = [
        ({"preferences": [{"type": "nope", "channels": {"email": False}}]}, "nope"),
        ({"preferences": [{"type": "new_campaign", "channels": {"fax": True}}]}, "fax"),
        (
            {"preferences": [{"type": "campaign_completed", "channels": {"email": False}}]},
            "required",
        ),
        ({"preferences": [{"type": "new_campaign", "channels": {"email": "maybe"}}]}, "email"),
        ({"preferences": []}, "preferences"),
        ({}, "preferences"),
    ]
    for body, named in cases:
        answer = me.request("PATCH", "/api/users/me/preferences", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert named in answer.text, (body, answer.text)
    grid = me.get("/api/users/me/preferences").json()["preferences"]
    assert all(all(row["channels"][c] for c in row["available"]) for row in grid)

    assert me.request("PATCH", "/api/users/me", json={"locale": "de"}).status_code == 422
    renamed = me.request("PATCH", "/api/users/me", json={"name": "Олег", "locale": "ru"})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["locale"]) == ("Олег", "ru")
    other = api.register(role="advertiser")
    taken = me.request(
        "PATCH", "/api/users/me", json={"email": other.email, "password": owner.password}
    )
    assert taken.status_code == 409
    assert me.get("/api/notifications/not-a-real-id").status_code == 404
