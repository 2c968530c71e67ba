"""A burst of simultaneous connections must not break the message-queue listener.

redis-py 8.x under eventlet stopped delivering Socket.IO emits after such a burst; this test
fails if any pinned combination of eventlet, redis-py and python-socketio does that again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.clients import LiveClient
from tests.support.stack import Stack

# The web process's message-queue listener under a burst of sockets; the database only stores.
pytestmark = pytest.mark.one_backend

USERS = 60
TABS_PER_USER = 5  # 300 connections
BROADCASTS = 10  # 3,000 deliveries to sockets


def test_burst_of_connections_then_every_emit_arrives(stack: Stack) -> None:
    """300 sockets connect at once; 10 broadcasts then reach every one of them."""
    stack.start(web=1, workers=1)
    admin = stack.create_admin()
    api = stack.api()
    with ThreadPoolExecutor(max_workers=16) as pool:
        users = list(pool.map(lambda _: api.register(), range(USERS)))

    tokens = [u.access_token for u in users for _ in range(TABS_PER_USER)]
    clients = [stack.live(token, connect=False) for token in tokens]
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(lambda c: c.connect(wait_timeout=30), clients))
    assert all(c.sio.connected for c in clients)

    admin_api = api.as_user(admin)
    for i in range(BROADCASTS):
        response = admin_api.post("/api/admin/broadcast", json={"title": f"B{i}", "message": "x"})
        assert response.status_code == 202, response.text

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(_complete(c) for c in clients):
        time.sleep(0.25)
    received = sum(len(_broadcasts(c)) for c in clients)
    assert received == len(clients) * BROADCASTS, (
        f"{received} of {len(clients) * BROADCASTS} broadcast deliveries arrived"
    )


def _broadcasts(client: LiveClient) -> set[str]:
    """The distinct broadcast titles a socket received."""
    return {n["title"] for n in client.notifications if n["type"] == "broadcast"}


def _complete(client: LiveClient) -> bool:
    """Whether a socket has every broadcast."""
    return len(_broadcasts(client)) == BROADCASTS
