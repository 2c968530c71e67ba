"""The Socket.IO handshake refuses bad tokens and drops sockets whose token expires."""

from __future__ import annotations

import time

import pytest
import socketio

from tests.support.stack import Stack
from tests.support.tokens import make_token

# The handshake's token checks: a user lookup by id is all they ask of the database.
pytestmark = pytest.mark.one_backend


@pytest.mark.parametrize(
    "kind",
    ["missing", "garbage", "forged", "expired", "refresh", "hs512", "unknown_user"],
)
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_bad_tokens_are_refused(module_stack: Stack, kind: str) -> None:
    """Every kind of bad token gets connect_error with a reason, and no session."""
    stack = module_stack.start(web=1, workers=0)
    user = stack.api().register()
    token = {
        "missing": None,
        "garbage": "garbage.token.here",
        "forged": make_token(user.id, secret="someone-elses-secret-key-0123456789abcdef"),
        "expired": make_token(user.id, expires_in=-5),
        "refresh": user.refresh_token,
        "hs512": make_token(user.id, algorithm="HS512"),
        "unknown_user": make_token("00000000-0000-0000-0000-000000000000"),
    }[kind]
    client = stack.live(token, connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()
    assert client.connect_errors and client.connect_errors[0]["data"]["code"].startswith("token_")
    assert not client.received("connected")


@pytest.mark.parametrize("where", ["query", "header"])
def test_token_also_accepted_in_query_or_header(module_stack: Stack, where: str) -> None:
    """`?token=` and `Authorization: Bearer` work as well as `auth.token`."""
    stack = module_stack.start(web=1, workers=0)
    user = stack.api().register()
    sio = socketio.Client()
    greeted: list[dict[str, str]] = []
    sio.on("connected", greeted.append)
    if where == "query":
        url, headers = f"{stack.base_url()}?token={user.access_token}", {}
    else:
        url, headers = stack.base_url(), {"Authorization": f"Bearer {user.access_token}"}
    sio.connect(url, headers=headers, transports=["websocket"], wait_timeout=10)
    try:
        deadline = time.monotonic() + 5
        while not greeted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert greeted == [{"status": "ok", "user_id": user.id}]
    finally:
        sio.disconnect()


def test_socket_is_dropped_when_its_token_expires(module_stack: Stack) -> None:
    """A socket authenticated with a token that expires in 2 s is disconnected then."""
    stack = module_stack.start(web=1, workers=0)
    user = stack.api().register()
    client = stack.live(make_token(user.id, expires_in=2))
    assert client.sio.connected
    deadline = time.monotonic() + 8
    while client.sio.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not client.sio.connected, "the server should drop the socket at token expiry"
