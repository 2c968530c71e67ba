"""Smoke test: one web and one worker process answer REST and Socket.IO end to end."""

from __future__ import annotations

import pytest
import socketio

from tests.support.stack import Stack


def test_health_register_and_live_connect(module_stack: Stack) -> None:
    """/health answers JSON, two users register and each live socket is greeted as its user."""
    stack = module_stack.start(web=1, workers=1)
    api = stack.api()

    health = api.get("/health")
    assert health.status_code == 200, health.text
    assert health.headers["Content-Type"].startswith("application/json")
    assert {"status", "database", "redis", "websocket"} <= health.json().keys()

    advertiser = api.register(role="advertiser", locale="en")
    owner = api.register(role="channel_owner", locale="ru")
    assert advertiser.user["role"] == "advertiser"
    assert owner.user["role"] == "channel_owner"
    assert advertiser.id != owner.id

    for account in (advertiser, owner):
        client = stack.live(account.access_token)
        greeting = client.wait_for(lambda data: True, event="connected")
        assert greeting == {"status": "ok", "user_id": account.id}


def test_forged_token_is_refused(module_stack: Stack) -> None:
    """A socket with a token the server did not sign gets connect_error, not a session."""
    stack = module_stack.start(web=1, workers=0)
    client = stack.live("not-a-jwt", connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()
    assert client.connect_errors, "the server should say why it refused"
