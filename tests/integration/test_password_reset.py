"""Password reset by email, end to end through the SendGrid stand-in."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator

import pytest

from tests.conftest import StackFactory
from tests.support.clients import DEFAULT_PASSWORD, unique_email
from tests.support.fake_sendgrid import Accepted, FakeSendGrid
from tests.support.stack import Stack

# The reset's logic is the same on both backends; the storage is what test_logins checks.
pytestmark = pytest.mark.one_backend
KEY = "SG.reset-test-key"
NEW_PASSWORD = "a-new-password-from-the-link"


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    """The SendGrid stand-in on loopback."""
    with FakeSendGrid(api_key=KEY) as server:
        yield server


@pytest.fixture
def stack(make_stack: StackFactory, fake: FakeSendGrid) -> Stack:
    """A web process and a worker sending email to the stand-in."""
    env = {"SENDGRID_API_KEY": KEY, "SENDGRID_API_HOST": fake.url}
    return make_stack(extra_env=env).start(web=1, workers=1)


def reset_email(fake: FakeSendGrid, address: str, count: int = 1) -> Accepted:
    """Wait for the `count`-th reset email to an address."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [m for m in fake.accepted if m.to == address and "password" in m.subject.lower()]
        if len(found) >= count:
            return found[count - 1]
        time.sleep(0.1)
    raise AssertionError(f"no reset email to {address}")


def test_a_reset_from_request_to_new_login(stack: Stack, fake: FakeSendGrid) -> None:
    api = stack.api()
    user = api.register(locale="en")
    tab = stack.live(user.access_token)
    began = time.monotonic()
    asked = api.post("/api/auth/password-reset", json={"email": user.email.upper()})
    assert asked.status_code == 202
    email = reset_email(fake, user.email)
    print(f"\nreset email at the stand-in {time.monotonic() - began:.2f} s after the request")
    [link] = re.findall(
        r"http://frontend\.test/reset-password\?token=([\w.-]+)", email.content("text/plain")
    )
    assert link in email.content("text/html")
    # The inbox shows that a reset was asked for, never the link.
    inbox = api.as_user(user).get("/api/notifications").json()
    assert any(n["type"] == "password_reset" for n in inbox) and link not in str(inbox)
    # The link's token is nothing else: not an access token.
    assert api.as_user(link).get("/api/users/me").status_code == 401

    done = api.post(
        "/api/auth/password-reset/confirm", json={"token": link, "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    # Every login of the user ended: the old refresh token, the open socket.
    assert (
        api.post("/api/auth/refresh", json={"refresh_token": user.refresh_token}).status_code == 401
    )
    deadline = time.monotonic() + 5
    while tab.sio.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not tab.sio.connected
    old = api.post("/api/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD})
    assert old.status_code == 401
    new = api.post("/api/auth/login", json={"email": user.email, "password": NEW_PASSWORD})
    assert new.status_code == 200
    # The link works once.
    again = api.post(
        "/api/auth/password-reset/confirm",
        json={"token": link, "new_password": "yet-another-one-1"},
    )
    assert again.status_code == 400 and again.json()["error"]["code"] == "reset_token_invalid"


def test_bad_links_and_weak_passwords_change_nothing(stack: Stack) -> None:
    api = stack.api()
    user = api.register()
    forged = api.post(
        "/api/auth/password-reset/confirm", json={"token": "a.b.c", "new_password": NEW_PASSWORD}
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "reset_token_invalid"
    # A refresh token is not a reset token either.
    other = api.post(
        "/api/auth/password-reset/confirm",
        json={"token": user.refresh_token, "new_password": NEW_PASSWORD},
    )
    assert other.status_code == 400
    weak = api.post(
        "/api/auth/password-reset/confirm", json={"token": "x", "new_password": "short"}
    )
    assert weak.status_code == 422
    login = api.post("/api/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD})
    assert login.status_code == 200


def test_known_and_unknown_addresses_look_alike(stack: Stack, fake: FakeSendGrid) -> None:
    """100 requests each: the same status, timing distributions side by side."""
    api = stack.api()
    known = api.register()
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(200):
        kind = "known" if i % 2 else "unknown"
        address = known.email if kind == "known" else unique_email("nobody")
        began = time.monotonic()
        response = api.post("/api/auth/password-reset", json={"email": address})
        timings[kind].append((time.monotonic() - began) * 1000)
        assert response.status_code == 202 and response.json() == {"status": "accepted"}
    summary = {
        kind: (statistics.median(ms), statistics.quantiles(ms, n=10)[-1], max(ms))
        for kind, ms in timings.items()
    }
    print(
        "\nreset requests, ms (median, p90, max): "
        + "; ".join(f"{k} {m:.2f} / {p:.2f} / {x:.2f}" for k, (m, p, x) in summary.items())
    )
    reset_email(fake, known.email, count=100)
    # Nothing reached an unknown address.
    assert all(m.to == known.email or "nobody" not in m.to for m in fake.accepted)
