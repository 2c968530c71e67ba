"""The password page in a real browser: ask for a link, follow it, set the new password."""

from __future__ import annotations

import re

import pytest

from tests.conftest import StackFactory
from tests.integration.test_password_reset import KEY, reset_email
from tests.support.browser import browser_unavailable
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.paths import ARTIFACTS_DIR

pytestmark = [
    pytest.mark.skipif(browser_unavailable() is not None, reason=browser_unavailable() or ""),
    pytest.mark.one_backend,
]

if browser_unavailable() is None:
    from playwright.sync_api import Browser, expect

WAIT_MS = 15_000


def test_a_reset_through_the_page(make_stack: StackFactory, browser: Browser) -> None:
    with FakeSendGrid(api_key=KEY) as fake:
        env = {"SENDGRID_API_KEY": KEY, "SENDGRID_API_HOST": fake.url}
        stack = make_stack(extra_env=env).start(web=1, workers=1)
        api = stack.api()
        user = api.register(locale="en")
        page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()

        page.goto(stack.base_url() + "/")
        page.click("text=Forgot your password?")
        page.fill("#request-form input[name=email]", user.email)
        page.click("#request-form button")
        expect(page.locator("#done")).to_contain_text("a link is on its way", timeout=WAIT_MS)

        text = reset_email(fake, user.email).content("text/plain")
        [token] = re.findall(r"reset-password\?token=([\w.-]+)", text)
        page.goto(f"{stack.base_url()}/reset-password?token={token}")
        assert "token=" not in page.url  # taken out of the address bar and the history
        page.fill("#confirm-form input[name=new_password]", "set-in-the-browser-1")
        page.click("#confirm-form button")
        expect(page.locator("#done")).to_contain_text("password is changed", timeout=WAIT_MS)
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS_DIR / "reset_password_phone.png"))

        login = api.post(
            "/api/auth/login", json={"email": user.email, "password": "set-in-the-browser-1"}
        )
        assert login.status_code == 200
