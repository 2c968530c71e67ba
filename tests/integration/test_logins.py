"""Logins that can be ended, on REST and on open sockets: logout, reuse, password change."""

from __future__ import annotations

import time

import pytest
import socketio

from tests.conftest import StackFactory
from tests.support.clients import DEFAULT_PASSWORD, Account, LiveClient
from tests.support.stack import Stack

# Revocation lives in Redis and the message queue; the database only stores the logins.
pytestmark = pytest.mark.one_backend


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    """One web process; a retired refresh token is a reuse at once (no grace)."""
    return make_stack(extra_env={"REFRESH_REUSE_GRACE_SECONDS": "0"}).start(web=1, workers=0)


def sign_in(stack: Stack, user: Account) -> Account:
    """A second login of the same user (another device)."""
    body = (
        stack.api()
        .post("/api/auth/login", json={"email": user.email, "password": user.password})
        .json()
    )
    return Account(
        user.user, body["access_token"], body["refresh_token"], user.email, user.password
    )


def dropped_within(client: LiveClient, seconds: float) -> float | None:
    """Seconds until the server dropped the socket, or None if it stayed connected."""
    began = time.monotonic()
    while client.sio.connected and time.monotonic() - began < seconds:
        time.sleep(0.02)
    return None if client.sio.connected else time.monotonic() - began


def test_logout_ends_that_login_only(stack: Stack) -> None:
    api = stack.api()
    phone = api.register()
    laptop = sign_in(stack, phone)
    phone_tab, laptop_tab = stack.live(phone.access_token), stack.live(laptop.access_token)

    began = time.monotonic()
    assert (
        api.post("/api/auth/logout", json={"refresh_token": phone.refresh_token}).status_code == 204
    )
    took = dropped_within(phone_tab, 5)
    print(f"\nlogout: the login's socket dropped {took:.3f} s after the call began" if took else "")
    assert took is not None and time.monotonic() - began < 5
    assert phone_tab.received("session_revoked") == [{"reason": "logout"}]
    refused = api.as_user(phone).get("/api/users/me")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"
    assert (
        api.post("/api/auth/refresh", json={"refresh_token": phone.refresh_token}).status_code
        == 401
    )
    again = stack.live(phone.access_token, connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        again.connect()
    assert again.connect_errors[0]["data"]["code"] == "token_revoked"
    # The other device is untouched.
    assert laptop_tab.sio.connected
    assert api.as_user(laptop).get("/api/users/me").status_code == 200


def test_a_reused_refresh_token_ends_the_login(stack: Stack) -> None:
    api = stack.api()
    victim = api.register()
    tab = stack.live(victim.access_token)
    rotated = api.post("/api/auth/refresh", json={"refresh_token": victim.refresh_token}).json()
    assert rotated["refresh_token"] != victim.refresh_token
    # The thief presents the token the victim already traded.
    reuse = api.post("/api/auth/refresh", json={"refresh_token": victim.refresh_token})
    assert reuse.status_code == 401 and reuse.json()["error"]["code"] == "token_reused"
    took = dropped_within(tab, 5)
    print(f"\nreuse: the login's socket dropped after {took:.3f} s" if took else "")
    assert took is not None
    # Every token of that login is dead, the newest included.
    newest = api.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert newest.json()["error"]["code"] == "token_revoked"
    assert api.as_user(rotated["access_token"]).get("/api/users/me").status_code == 401


def test_a_password_change_ends_every_other_login(stack: Stack) -> None:
    api = stack.api()
    here = api.register()
    elsewhere = sign_in(stack, here)
    here_tab, elsewhere_tab = stack.live(here.access_token), stack.live(elsewhere.access_token)
    me = api.as_user(here)

    wrong = me.post(
        "/api/auth/password", json={"current_password": "not-it", "new_password": "x" * 12}
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_password"
    weak = me.post(
        "/api/auth/password", json={"current_password": DEFAULT_PASSWORD, "new_password": "short"}
    )
    assert weak.status_code == 422 and "new_password" in weak.json()["error"]["message"]

    changed = me.post(
        "/api/auth/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a-brand-new-password"},
    )
    assert changed.status_code == 204, changed.text
    took = dropped_within(elsewhere_tab, 5)
    print(f"\npassword change: the other login's socket dropped after {took:.3f} s" if took else "")
    assert took is not None
    assert api.as_user(elsewhere).get("/api/users/me").status_code == 401
    assert (
        api.post("/api/auth/refresh", json={"refresh_token": elsewhere.refresh_token}).status_code
        == 401
    )
    # This device carries on; the old password no longer signs in.
    assert here_tab.sio.connected and me.get("/api/users/me").status_code == 200
    old = api.post("/api/auth/login", json={"email": here.email, "password": DEFAULT_PASSWORD})
    assert old.status_code == 401
