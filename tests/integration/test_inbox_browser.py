"""Two people in a real browser watch a campaign's notifications arrive, across a server restart."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.browser import browser_unavailable
from tests.support.clients import DEFAULT_PASSWORD, Api, unique_email
from tests.support.paths import ARTIFACTS_DIR
from tests.support.stack import Stack

pytestmark = [
    pytest.mark.skipif(browser_unavailable() is not None, reason=browser_unavailable() or ""),
    # The page, its socket and its token refresh: the catch-up it relies on after the restart
    # is the server's, tested on both backends in test_lifecycle.py.
    pytest.mark.one_backend,
]

if browser_unavailable() is None:
    from playwright.sync_api import Browser, Page, expect

# Short-lived access tokens, so the page must refresh its token (and reconnect) during the test.
ACCESS_TTL = "15"
WAIT_MS = 15_000
TOKEN_JS = "JSON.parse(localStorage['admarket.session']).access_token"


def sign_up(page: Page, base_url: str, name: str, email: str, role: str) -> None:
    """Open the inbox page and sign up through its form; wait until it is live."""
    page.goto(base_url + "/")
    page.click('.tabs button[data-tab="signup"]')
    form = page.locator("#signup-form")
    form.locator('input[name="name"]').fill(name)
    form.locator('input[name="email"]').fill(email)
    form.locator('input[name="password"]').fill(DEFAULT_PASSWORD)
    form.locator('select[name="role"]').select_option(role)
    form.locator('button[type="submit"]').click()
    expect(page.locator("#conn")).to_have_text("live", timeout=WAIT_MS)
    # The welcome notification is the first in the inbox: read it, to count from zero.
    expect(items(page, "welcome")).to_have_count(1)
    expect(page.locator("#badge")).to_have_text("1")
    page.click("#read-all")
    expect(page.locator("#badge")).to_have_text("0")
    # Gone after any reload: proves that what follows arrives without one.
    page.evaluate("window.__noReload = true")


def signed_in(api: Api, email: str) -> Api:
    """A REST client signed in over the API with the test's password."""
    login = api.post("/api/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert login.status_code == 200, login.text
    return api.as_user(login.json()["access_token"])


def items(page: Page, kind: str):  # noqa: ANN201 - a Playwright Locator
    """The notifications of one type in the page's list."""
    return page.locator(f'#list li[data-type="{kind}"]')


def test_two_people_watch_a_campaign_live(make_stack, browser: Browser) -> None:
    """Owner (phone width) and advertiser run a campaign; each sees the other's step live."""
    stack: Stack = make_stack(extra_env={"JWT_ACCESS_TTL_SECONDS": ACCESS_TTL})
    stack.start(web=2, workers=1)
    base = stack.base_url(0)
    owner = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    advertiser = browser.new_context(viewport={"width": 1100, "height": 860}).new_page()
    owner_email, advertiser_email = unique_email("owner"), unique_email("advertiser")
    began = time.monotonic()
    sign_up(owner, base, "Olga Owner", owner_email, "channel_owner")
    sign_up(advertiser, base, "Artem Advertiser", advertiser_email, "advertiser")
    first_token = owner.evaluate(TOKEN_JS)

    # The session's database holds other tests' channels too: this one has a name of its own.
    channel_name = f"Olga's channel {uuid.uuid4().hex[:6]}"
    owner.fill('#channel-form input[name="name"]', channel_name)
    owner.click('#channel-form button[type="submit"]')
    expect(owner.locator("#channels")).to_contain_text(channel_name)
    advertiser.evaluate("window.dispatchEvent(new Event('focus'))")  # back from the other window
    option = advertiser.locator("#campaign-form option", has_text=channel_name)
    expect(option).to_have_count(1)
    advertiser.select_option("#campaign-form select", value=option.get_attribute("value"))
    advertiser.click('#campaign-form button[type="submit"]')

    expect(items(owner, "new_campaign")).to_have_count(1, timeout=WAIT_MS)
    expect(owner.locator("#badge")).to_have_text("1")
    owner.click('#campaigns li[data-status="pending"] button[data-action="accept"]')
    expect(items(advertiser, "campaign_accepted")).to_have_count(1, timeout=WAIT_MS)
    expect(advertiser.locator("#badge")).to_have_text("1")
    advertiser.click('#campaigns li[data-status="accepted"] button[data-action="complete"]')
    expect(items(owner, "campaign_completed")).to_have_count(1, timeout=WAIT_MS)
    expect(owner.locator("#badge")).to_have_text("2")
    owner.click('#list li[data-type="new_campaign"] .mark-read')
    expect(owner.locator("#badge")).to_have_text("1")
    lifecycle_seconds = time.monotonic() - began

    # The web process both pages talk to dies; meanwhile, through the other web process, the
    # advertiser asks for a second placement. Back up, the owner's page catches up by itself.
    stack.kill_web(0)
    expect(owner.locator("#conn")).not_to_have_text("live", timeout=WAIT_MS)
    api = stack.api(1)
    as_advertiser = signed_in(api, advertiser_email)
    channel_id = next(
        c["id"] for c in as_advertiser.get("/api/channels").json() if c["name"] == channel_name
    )
    second = as_advertiser.post(
        "/api/campaigns", json={"channel_id": channel_id, "title": "Winter sale", "content": "-20%"}
    )
    assert second.status_code == 201, second.text
    stack.webs[0].start()
    restarted = time.monotonic()
    expect(items(owner, "new_campaign")).to_have_count(2, timeout=30_000)
    caught_up_seconds = time.monotonic() - restarted
    expect(owner.locator("#conn")).to_have_text("live", timeout=WAIT_MS)
    expect(owner.locator("#badge")).to_have_text("2")
    owner.click('#campaigns li[data-status="pending"] button[data-action="accept"]')
    expect(items(advertiser, "campaign_accepted")).to_have_count(2, timeout=30_000)

    # The page refreshes its short-lived access token by itself, reconnects with the new one,
    # and the next notification still arrives.
    owner.wait_for_function(f"t => {TOKEN_JS} !== t", arg=first_token, timeout=20_000)
    advertiser.click('#campaigns li[data-status="accepted"] button[data-action="complete"]')
    expect(items(owner, "campaign_completed")).to_have_count(2, timeout=WAIT_MS)
    for page in (owner, advertiser):
        assert page.evaluate("window.__noReload") is True
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    # What a phone shows: the top of the page, as a person would see it.
    owner.evaluate("window.scrollTo(0, 0)")
    owner.screenshot(path=str(ARTIFACTS_DIR / "inbox_owner_phone.png"))
    advertiser.screenshot(path=str(ARTIFACTS_DIR / "inbox_advertiser.png"), full_page=True)
    advertiser.click("#read-all")
    expect(advertiser.locator("#badge")).to_have_text("0")

    # Without the socket.io-client files (no npm), the page polls the REST API instead.
    offline = browser.new_context()
    offline.route("**/vendor/socket.io-client/**", lambda route: route.abort())
    polling = offline.new_page()
    polling.goto(base + "/")
    polling.fill('#login-form input[name="email"]', advertiser_email)
    polling.fill('#login-form input[name="password"]', DEFAULT_PASSWORD)
    polling.click('#login-form button[type="submit"]')
    expect(polling.locator("#conn")).to_have_text("polling", timeout=WAIT_MS)
    expect(items(polling, "campaign_accepted")).to_have_count(2)
    # Fresh logins: the 15-second tokens of earlier calls have expired by now.
    owner_api, as_advertiser = signed_in(api, owner_email), signed_in(api, advertiser_email)
    third = as_advertiser.post(
        "/api/campaigns", json={"channel_id": channel_id, "title": "Autumn", "content": "-30%"}
    ).json()
    assert owner_api.post(f"/api/campaigns/{third['id']}/accept").status_code == 200
    expect(items(polling, "campaign_accepted")).to_have_count(3, timeout=WAIT_MS)
    (ARTIFACTS_DIR / "inbox_browser_timings.txt").write_text(
        f"lifecycle through two pages: {lifecycle_seconds:.1f} s\n"
        f"catch-up after the web restart: {caught_up_seconds:.1f} s\n"
    )
