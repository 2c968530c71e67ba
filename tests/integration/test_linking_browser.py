"""A channel owner links Telegram and VK in the settings view, and sees where notifications went.

The page is driven in Chromium; what Telegram and VK would send (the bot's /start update, the
community's message_new event) is posted to the real web process with `requests`, as they
would. No bot token: the worker writes Telegram and VK messages to the stack's outbox.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from typing import Any

import pytest
import requests

from tests.integration.test_inbox_browser import WAIT_MS, items, sign_up, signed_in
from tests.integration.test_settings_browser import DESKTOP, PHONE, SETTINGS, assert_fits, until
from tests.support.browser import browser_unavailable
from tests.support.clients import Api, unique_email
from tests.support.fake_telegram import message_update
from tests.support.fake_vk import message_new_event
from tests.support.paths import ARTIFACTS_DIR
from tests.support.stack import Stack

pytestmark = [
    pytest.mark.skipif(browser_unavailable() is not None, reason=browser_unavailable() or ""),
    # The page over the REST API; linking itself is tested on both backends in
    # test_messenger_linking.py.
    pytest.mark.one_backend,
]

if browser_unavailable() is None:
    from playwright.sync_api import Locator, Page, Request, Route, expect

TG_SECRET = "tg-browser_Secret-7"
BOT = "admarket_browser_bot"
VK_GROUP = 5151
VK_SECRET = "vk-browser-secret"
ENV = {
    "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
    "TELEGRAM_BOT_USERNAME": BOT,
    "VK_CALLBACK_SECRET": VK_SECRET,
    "VK_GROUP_ID": str(VK_GROUP),
}
TG_WEBHOOK = "/api/integrations/telegram/webhook"
VK_CALLBACK = "/api/integrations/vk/callback"
# The page asks GET /api/users/me this often while a link is pending.
POLL_SECONDS = 3
FINAL = {"sent", "failed", "suppressed", "skipped"}


def account(page: Page, channel: str) -> Locator:
    """One messenger's row in the Linked accounts card."""
    return page.locator(f'#linked-card li[data-account="{channel}"]')


def links(rest: Api) -> dict[str, Any]:
    """The `links` of GET /api/users/me."""
    response = rest.get("/api/users/me")
    assert response.status_code == 200, response.text
    return response.json()["links"]


def to_bot(base: str, chat: int, text: str) -> None:
    """What Telegram posts to the webhook when someone writes to the bot."""
    answer = requests.post(
        base + TG_WEBHOOK,
        json=message_update(chat, text, update_id=random.randrange(10**9), username="lena_tg"),
        headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["method"] == "sendMessage", answer.text


def to_community(base: str, peer: int, text: str) -> None:
    """What VK's Callback API posts when someone writes to the community."""
    event = message_new_event(VK_GROUP, peer, text, secret=VK_SECRET)
    answer = requests.post(base + VK_CALLBACK, json=event, timeout=10)
    assert (answer.status_code, answer.text) == (200, "ok")


def finished(rest: Api, notification_id: str) -> dict[str, Any]:
    """GET /api/notifications/<id> once every channel's delivery is final."""
    detail: dict[str, Any] = {}

    def done() -> bool:
        nonlocal detail
        detail = rest.get(f"/api/notifications/{notification_id}").json()
        return all(d["status"] in FINAL for d in detail["deliveries"])

    until(done, "every delivery is final", timeout=30)
    return detail


def campaign_for(base: str, rest: Api, title: str) -> str:
    """A new advertiser requests a placement on the owner's channel; returns the owner's
    new_campaign notification id."""
    channel = rest.post(
        "/api/channels",
        json={"name": f"Lena's {uuid.uuid4().hex[:6]}", "platform": "telegram",
              "url": "https://t.me/lena_channel", "price": "50.00"},
    )  # fmt: skip
    assert channel.status_code == 201, channel.text
    advertiser = Api(base).register("advertiser")
    campaign = (
        Api(base)
        .as_user(advertiser)
        .post(
            "/api/campaigns",
            json={
                "channel_id": channel.json()["id"],
                "title": title,
                "content": "Fresh spring ads",
            },
        )
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    found = ""

    def stored() -> bool:
        nonlocal found
        inbox = rest.get("/api/notifications?limit=5").json()
        found = next((n["id"] for n in inbox if n["campaign_id"] == campaign_id), "")
        return bool(found)

    until(stored, "the owner's notification is stored")
    return found


def test_owner_links_messengers_and_sees_deliveries(make_stack, browser) -> None:
    """Link Telegram and VK from the card, run a campaign, read its badges and timeline."""
    stack: Stack = make_stack(extra_env=ENV).start(web=1, workers=1)
    base = stack.base_url(0)
    page = browser.new_context(viewport=DESKTOP).new_page()
    email = unique_email("linking")
    sign_up(page, base, "Lena Linking", email, "channel_owner")
    rest = signed_in(stack.api(0), email)
    user_calls: list[float] = []

    def count(request: Request) -> None:
        if request.method == "GET" and request.url.endswith("/api/users/me"):
            user_calls.append(time.monotonic())

    page.on("request", count)

    page.click("#nav-settings")
    expect(page).to_have_url(base + SETTINGS)
    telegram, vk = account(page, "telegram"), account(page, "vk")
    for row, label in ((telegram, "Link Telegram"), (vk, "Link VK")):
        expect(row).to_have_attribute("data-state", "unlinked")
        expect(row).to_contain_text("not linked")
        expect(row.locator("button")).to_have_text(label)
    expect(page.locator("#linked-card")).not_to_contain_text("soon")

    # Telegram: the card shows the bot's one-time link; Telegram then posts /start <code>.
    telegram.get_by_role("button", name="Link Telegram").click()
    expect(telegram).to_have_attribute("data-state", "pending")
    link = telegram.locator("a.external")
    url = link.get_attribute("href") or ""
    match = re.fullmatch(rf"https://t\.me/{BOT}\?start=([A-Za-z0-9_-]{{1,64}})", url)
    assert match, url
    assert (link.get_attribute("target"), link.get_attribute("rel")) == ("_blank", "noopener")
    expect(telegram).to_contain_text(re.compile(r"The link works until \d{1,2}:\d{2}"))
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(PHONE)
    assert_fits(page, "phone, Telegram link pending")
    card = page.locator("#linked-card")
    card.screenshot(path=str(ARTIFACTS_DIR / "settings-telegram-pending-phone.png"))
    page.set_viewport_size(DESKTOP)
    assert links(rest)["telegram"]["linked"] is False
    chat = random.randrange(10**8, 2 * 10**9)
    to_bot(base, chat, f"/start {match.group(1)}")
    # The page notices by itself (it asks every few seconds).
    expect(telegram).to_have_attribute("data-state", "linked", timeout=WAIT_MS)
    expect(telegram).to_contain_text("@lena_tg")
    expect(telegram).to_contain_text("since")
    expect(telegram.locator("button")).to_have_text("Unlink")
    state = links(rest)["telegram"]
    assert (state["linked"], state["display_name"]) == (True, "@lena_tg")

    # VK: a code to send to the community, in large type, with the community's vk.me link.
    vk.get_by_role("button", name="Link VK").click()
    expect(vk).to_have_attribute("data-state", "pending")
    expect(vk).to_contain_text("Send this code to the community")
    code = vk.locator(".link-code").inner_text().strip()
    assert re.fullmatch(r"[2-9A-Z]{8}", code), code
    community = vk.locator("a.external")
    expect(community).to_have_attribute("href", f"https://vk.me/club{VK_GROUP}")
    expect(community).to_have_attribute("target", "_blank")
    expect(community).to_have_attribute("rel", "noopener")
    font = vk.locator(".link-code").evaluate("e => getComputedStyle(e).fontFamily")
    assert "mono" in font.lower(), font

    # Telegram linked and VK pending, on a phone and on a desktop.
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        page.evaluate("window.scrollTo(0, 0)")
        assert_fits(page, name)
        page.screenshot(path=str(ARTIFACTS_DIR / f"settings-linked-{name}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

    peer = random.randrange(10**6, 10**9)
    to_community(base, peer, code)
    expect(vk).to_have_attribute("data-state", "linked", timeout=WAIT_MS)
    expect(vk).to_contain_text(f"id{peer}")
    assert links(rest)["vk"]["linked"] is True
    # Nothing pending any more: the page stops asking.
    time.sleep(POLL_SECONDS + 1)
    settled = len(user_calls)
    time.sleep(POLL_SECONDS + 1)
    assert len(user_calls) == settled, "the page still polls with no link pending"

    # The inbox: a new campaign arrives live, without deliveries; "details" asks for them.
    page.click("#settings a[data-nav]")
    expect(page.locator("#app")).to_be_visible()
    first = campaign_for(base, rest, "Linked spring sale")
    item = items(page, "new_campaign")
    expect(item).to_have_count(1, timeout=WAIT_MS)
    expect(item.locator(".dlv")).to_have_count(0)
    item.locator("button.details").click()
    timeline = item.locator(".timeline")
    expect(timeline).to_be_visible()
    for channel in ("inbox", "email", "telegram", "vk"):
        expect(timeline.locator(f'li[data-channel="{channel}"]')).to_have_count(1)
    expect(timeline.locator('dd[data-field="attempts"]')).to_have_count(4)
    expect(item.locator(".deliveries .dlv")).to_have_count(4)  # known now
    item.locator("button.details").click()
    expect(timeline).to_have_count(0)

    # Once sent (to the outbox), the list itself shows each channel's badge after a reload.
    detail = finished(rest, first)
    statuses = {d["channel"]: d["status"] for d in detail["deliveries"]}
    assert statuses == dict.fromkeys(("inbox", "email", "telegram", "vk"), "sent"), statuses
    assert list(stack.outbox_dir.glob(f"telegram-{chat}-*.json")), "no Telegram message written"
    page.reload()
    item = items(page, "new_campaign")
    expect(item).to_have_count(1, timeout=WAIT_MS)
    email_badge = item.locator('.dlv[data-channel="email"]')
    expect(email_badge).to_have_text("email ✓")
    expect(email_badge).to_have_attribute("title", re.compile(r"^email: sent"))
    expect(item.locator('.dlv[data-channel="telegram"]')).to_have_text("telegram ✓")
    expect(item.locator('.dlv[data-channel="vk"]')).to_have_text("vk ✓")
    # The welcome notification, older, carries its own email badge.
    expect(items(page, "welcome").locator('.dlv[data-channel="email"]')).to_have_count(1)
    item.locator(".deliveries").click()
    step = item.locator('.timeline li[data-channel="telegram"]')
    expect(step.locator('dd[data-field="attempts"]')).to_have_text("1")
    expect(step.locator('dd[data-field="provider_message_id"]')).to_have_text(
        re.compile(rf"^outbox:telegram-{chat}-")
    )
    expect(step.locator('dd[data-field="finished_at"]')).to_have_text(re.compile(r"\d:\d\d"))
    expect(step).to_contain_text("attempts")
    page.set_viewport_size(PHONE)
    assert_fits(page, "phone inbox with a timeline")
    item.screenshot(path=str(ARTIFACTS_DIR / "inbox-timeline-phone.png"))
    page.set_viewport_size(DESKTOP)

    # The messengers' button opens /?notification=<id>: that item is marked and in view.
    page.goto(f"{base}/?notification={first}")
    target = page.locator(f'#list li[data-id="{first}"]')
    expect(target).to_have_class(re.compile(r"\btarget\b"), timeout=WAIT_MS)
    expect(target).to_be_in_viewport()
    expect(page.locator("#list li.target")).to_have_count(1)

    # Unlink both from the card: not linked, and the REST API agrees.
    page.goto(base + SETTINGS)
    telegram, vk = account(page, "telegram"), account(page, "vk")
    expect(telegram).to_have_attribute("data-state", "linked", timeout=WAIT_MS)
    for row, channel in ((telegram, "telegram"), (vk, "vk")):
        row.get_by_role("button", name="Unlink").click()
        expect(row).to_have_attribute("data-state", "unlinked")
        expect(row).to_contain_text("not linked")
        assert links(rest)[channel]["linked"] is False
    expect(page.locator("#error")).to_be_hidden()

    # A link left unused expires: the card says so and stops asking.
    def soon(route: Route) -> None:
        answer = route.fetch()
        body = answer.json()
        body["expires_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
        route.fulfill(response=answer, json=body)

    page.route("**/api/users/me/telegram/link", soon)
    telegram.get_by_role("button", name="Link Telegram").click()
    expect(telegram).to_have_attribute("data-state", "pending")
    expect(telegram).to_have_attribute("data-state", "expired", timeout=WAIT_MS)
    expect(telegram).to_contain_text("expired")
    expect(telegram.locator("button")).to_have_text("Link Telegram")
    settled = len(user_calls)
    time.sleep(POLL_SECONDS + 1)
    assert len(user_calls) == settled, "the page still polls for an expired link"

    # A pending link stops being watched when the view is left.
    vk.get_by_role("button", name="Link VK").click()
    expect(vk).to_have_attribute("data-state", "pending")
    page.click("#settings a[data-nav]")
    expect(page.locator("#app")).to_be_visible()
    settled = len(user_calls)
    time.sleep(POLL_SECONDS + 1)
    assert len(user_calls) == settled, "the page still polls after leaving the view"

    # Unlinked, the messengers are skipped: their badges say so.
    second = campaign_for(base, rest, "Unlinked autumn sale")
    statuses = {d["channel"]: d["status"] for d in finished(rest, second)["deliveries"]}
    assert (statuses["telegram"], statuses["vk"]) == ("skipped", "skipped"), statuses
    page.reload()
    latest = page.locator(f'#list li[data-id="{second}"]')
    expect(latest.locator('.dlv[data-channel="telegram"]')).to_have_text("telegram —")
    expect(latest.locator('.dlv[data-channel="vk"]')).to_have_attribute(
        "title", re.compile(r"^vk: not sent")
    )
    assert_fits(page, "desktop inbox with badges")
