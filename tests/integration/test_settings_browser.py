"""A channel owner chooses their notifications in the settings view of the inbox page."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.test_inbox_browser import WAIT_MS, sign_up, signed_in
from tests.support.browser import browser_unavailable
from tests.support.clients import DEFAULT_PASSWORD, Api, unique_email
from tests.support.paths import ARTIFACTS_DIR
from tests.support.stack import Stack

pytestmark = [
    pytest.mark.skipif(browser_unavailable() is not None, reason=browser_unavailable() or ""),
    # The page and the REST API it calls: how preferences are stored is tested on both backends
    # by the API's own tests.
    pytest.mark.one_backend,
]

if browser_unavailable() is None:
    from playwright.sync_api import Browser, Page, Route, expect

SETTINGS = "/settings/notifications"
CHANNELS = ("email", "telegram", "vk")
# What a channel owner may receive (core/notification_types.py); the page must list them all.
OWNER_TYPES = {
    "welcome",
    "new_campaign",
    "campaign_completed",
    "withdrawal_processed",
    "withdrawal_rejected",
    "broadcast",
    "password_reset",
}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def until(check: Callable[[], bool], what: str, timeout: float = WAIT_MS / 1000) -> None:
    """Wait until `check()` is true: the page saves in the background."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def prefs(api: Api) -> dict[str, dict[str, Any]]:
    """The user's grid over REST, by type."""
    response = api.get("/api/users/me/preferences")
    assert response.status_code == 200, response.text
    return {p["type"]: p for p in response.json()["preferences"]}


def me(api: Api) -> dict[str, Any]:
    """The signed-in user over REST."""
    response = api.get("/api/users/me")
    assert response.status_code == 200, response.text
    return response.json()


def box(page: Page, kind: str, channel: str):  # noqa: ANN201 - a Playwright Locator
    """One cell's checkbox in the grid."""
    return page.locator(f'#prefs tr[data-type="{kind}"] input[data-channel="{channel}"]')


def optional_email(grid: dict[str, dict[str, Any]]) -> list[str]:
    """The types the "unsubscribe from all optional email" switch speaks for."""
    return [t for t, p in grid.items() if not p["required"] and "email" in p["available"]]


def assert_fits(page: Page, label: str) -> None:
    """No horizontal scrolling at the page's current width."""
    width, scroll = page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]")
    assert scroll <= width, f"{label}: the page scrolls sideways ({scroll} px in {width} px)"


def assert_grid_matches(page: Page, grid: dict[str, dict[str, Any]]) -> None:
    """Every row and cell of the page's grid shows what the API says."""
    rows = page.locator("#prefs tbody tr")
    expect(rows).to_have_count(len(grid))
    assert [rows.nth(i).get_attribute("data-type") for i in range(len(grid))] == list(grid)
    for kind, pref in grid.items():
        row = page.locator(f'#prefs tr[data-type="{kind}"]')
        expect(row.locator("th")).to_contain_text(pref["label"])
        expect(row.locator(".required")).to_have_count(1 if pref["required"] else 0)
        for channel in CHANNELS:
            cell = box(page, kind, channel)
            if channel not in pref["available"]:
                expect(cell).to_have_count(0)
                continue
            if pref["channels"][channel]:
                expect(cell).to_be_checked()
            else:
                expect(cell).not_to_be_checked()
            if pref["required"]:
                expect(cell).to_be_disabled()
            else:
                expect(cell).to_be_enabled()
    dashes = sum(len(CHANNELS) - len(p["available"]) for p in grid.values())
    expect(page.locator("#prefs td.none", has_text="—")).to_have_count(dashes)


def test_owner_chooses_notifications_in_settings(make_stack, browser: Browser) -> None:
    """Every change in the settings view is saved over the API, survives a reload, and fits."""
    stack: Stack = make_stack()
    stack.start(web=1, workers=1)
    base = stack.base_url(0)
    page = browser.new_context(viewport=DESKTOP).new_page()
    email = unique_email("settings")
    sign_up(page, base, "Sofia Settings", email, "channel_owner")
    rest = signed_in(stack.api(0), email)

    # The header's link opens the view without loading the page again.
    page.click("#nav-settings")
    expect(page).to_have_url(base + SETTINGS)
    expect(page.locator("#settings")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    grid = prefs(rest)
    assert set(grid) == OWNER_TYPES, grid.keys()
    assert_grid_matches(page, grid)
    expect(box(page, "campaign_completed", "email")).to_be_checked()
    expect(box(page, "campaign_completed", "email")).to_be_disabled()
    expect(page.locator("#email-optout")).not_to_be_checked()
    expect(page.locator("#email-address")).to_have_text(email)
    expect(page.locator("#email-warning")).to_be_hidden()
    # Nothing linked yet: each messenger offers its link (test_linking_browser.py follows it).
    for channel, label in (("telegram", "Link Telegram"), ("vk", "Link VK")):
        row = page.locator(f'#linked-card li[data-account="{channel}"]')
        expect(row).to_have_attribute("data-state", "unlinked")
        expect(row).to_contain_text("not linked")
        expect(row.locator("button")).to_have_text(label)
    expect(page.locator("#linked-card")).not_to_contain_text("soon")
    assert_fits(page, "desktop")

    # One cell at a time: off, and on again.
    box(page, "new_campaign", "email").uncheck()
    until(lambda: prefs(rest)["new_campaign"]["channels"]["email"] is False, "email is off")
    assert prefs(rest)["new_campaign"]["channels"]["telegram"] is True  # only what was named
    box(page, "new_campaign", "email").check()
    until(lambda: prefs(rest)["new_campaign"]["channels"]["email"] is True, "email is on")
    expect(page.locator("#error")).to_be_hidden()

    # A refused change shows the server's message and puts the box back.
    def refuse(route: Route) -> None:
        if route.request.method != "PATCH":
            route.continue_()
            return
        body = {"error": {"code": "invalid_preferences", "message": "refused for the test"}}
        route.fulfill(status=422, content_type="application/json", body=json.dumps(body))

    page.route("**/api/users/me/preferences", refuse)
    box(page, "new_campaign", "vk").click()
    expect(page.locator("#error")).to_have_text("refused for the test")
    expect(box(page, "new_campaign", "vk")).to_be_checked()
    page.unroute("**/api/users/me/preferences", refuse)
    assert prefs(rest)["new_campaign"]["channels"]["vk"] is True

    # The switch turns every optional type's email off in one request, then on again.
    optional = optional_email(grid)
    assert {"welcome", "new_campaign"} <= set(optional)
    page.locator("#email-optout").check()
    until(
        lambda: all(not prefs(rest)[t]["channels"]["email"] for t in optional),
        "every optional email is off",
    )
    after = prefs(rest)
    assert all(after[t]["channels"]["email"] for t in after if after[t]["required"])
    assert_grid_matches(page, after)
    page.locator("#email-optout").uncheck()
    until(
        lambda: all(prefs(rest)[t]["channels"]["email"] for t in optional),
        "every optional email is on again",
    )
    assert_grid_matches(page, prefs(rest))
    # Turning each optional email off by hand amounts to the same: the switch says so.
    for kind in optional:
        box(page, kind, "email").uncheck()
        expect(page.locator("#prefs-status")).to_have_text("Saved")
    expect(page.locator("#email-optout")).to_be_checked()
    box(page, "welcome", "email").check()
    expect(page.locator("#email-optout")).not_to_be_checked()

    # Language and name, saved as they are changed.
    expect(page.locator("#locale")).to_have_value(me(rest)["locale"])
    page.select_option("#locale", "ru")
    until(lambda: me(rest)["locale"] == "ru", "the locale is ru")
    expect(page.locator("#profile-status")).to_have_text("Saved")
    page.fill("#name", "Sofia Renamed")
    page.press("#name", "Enter")
    until(lambda: me(rest)["name"] == "Sofia Renamed", "the name is saved")
    expect(page.locator("#who")).to_contain_text("Sofia Renamed")

    # A reload at the view's address shows the view again, with what was saved.
    box(page, "new_campaign", "telegram").uncheck()
    until(lambda: not prefs(rest)["new_campaign"]["channels"]["telegram"], "telegram is off")
    page.reload()
    expect(page.locator("#settings")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#app")).to_be_hidden()
    expect(page.locator("#locale")).to_have_value("ru")
    expect(page.locator("#name")).to_have_value("Sofia Renamed")
    assert_grid_matches(page, prefs(rest))
    expect(box(page, "new_campaign", "telegram")).not_to_be_checked()

    # Back to the inbox and forward again, in the page: no reload on the way.
    page.evaluate("window.__noReload = true")
    page.click("#settings a[data-nav]")
    expect(page).to_have_url(base + "/")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#settings")).to_be_hidden()
    page.go_back()
    expect(page).to_have_url(base + SETTINGS)
    expect(page.locator("#settings")).to_be_visible()
    page.go_forward()
    expect(page).to_have_url(base + "/")
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#list li")).not_to_have_count(0)
    page.go_back()
    expect(page.locator("#settings")).to_be_visible()
    assert page.evaluate("window.__noReload") is True

    # The provider bounced the address: the view warns, and changing it is right there.
    with stack.engine().begin() as conn:
        conn.execute(
            text(
                "UPDATE users SET email_undeliverable_at = :at, "
                "email_undeliverable_reason = :reason WHERE email = :email"
            ),
            {"at": datetime.now(UTC), "reason": "550 5.1.1 mailbox unavailable", "email": email},
        )
    page.reload()
    warning = page.locator("#email-warning")
    expect(warning).to_be_visible(timeout=WAIT_MS)
    expect(warning).to_contain_text("Emails to this address bounced, so none are sent.")
    expect(warning).to_contain_text("550 5.1.1 mailbox unavailable")
    expect(page.locator("#email-form")).to_be_visible()
    expect(page.locator("#conn")).to_have_text("live", timeout=WAIT_MS)

    # The screenshots: the whole view, warning included, on a phone and on a desktop.
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        page.evaluate("window.scrollTo(0, 0)")
        assert_fits(page, name)
        page.screenshot(path=str(ARTIFACTS_DIR / f"settings-{name}.png"), full_page=True)

    new_email = unique_email("settings-new")
    page.fill('#email-form input[name="email"]', new_email)
    page.fill('#email-form input[name="password"]', "not-the-password")
    page.click('#email-form button[type="submit"]')
    expect(page.locator("#error")).to_contain_text("password")
    assert me(rest)["email"] == email
    page.fill('#email-form input[name="password"]', DEFAULT_PASSWORD)
    page.click('#email-form button[type="submit"]')
    expect(page.locator("#email-address")).to_have_text(new_email)
    expect(warning).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    user = me(rest)
    assert (user["email"], user["email_status"]) == (new_email, "ok")

    # Signed out, the emails' settings link shows the sign-in form, then the view.
    fresh = browser.new_context(viewport=PHONE).new_page()
    fresh.goto(base + SETTINGS)
    expect(fresh.locator("#auth")).to_be_visible()
    expect(fresh.locator("#auth-next")).to_be_visible()
    expect(fresh.locator("#settings")).to_be_hidden()
    fresh.fill('#login-form input[name="email"]', new_email)
    fresh.fill('#login-form input[name="password"]', DEFAULT_PASSWORD)
    fresh.click('#login-form button[type="submit"]')
    expect(fresh.locator("#settings")).to_be_visible(timeout=WAIT_MS)
    expect(fresh.locator("#locale")).to_have_value("ru")
    expect(box(fresh, "new_campaign", "telegram")).not_to_be_checked()
    assert_fits(fresh, "phone, after signing in")
