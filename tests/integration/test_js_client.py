"""The official JavaScript socket.io-client 4.x, used exactly as SPEC.md shows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.support.flows import act, create_campaign, create_channel
from tests.support.js_client import JsClient, js_client_unavailable
from tests.support.paths import REPO_ROOT
from tests.support.stack import Stack
from tests.support.tokens import make_token

ARTIFACTS = REPO_ROOT / "test-artifacts"
pytestmark = [
    pytest.mark.skipif(js_client_unavailable() is not None, reason=js_client_unavailable() or ""),
    # The wire contract with the official client; test_lifecycle.py covers both backends.
    pytest.mark.one_backend,
]


@pytest.fixture
def js_clients() -> Iterator[list[JsClient]]:
    """Node clients started by a test, stopped after it."""
    clients: list[JsClient] = []
    yield clients
    for client in clients:
        client.close()


def _open(stack: Stack, clients: list[JsClient], token: str | None, **kw: int) -> JsClient:
    """Start one Node client against the stack's first web process."""
    client = JsClient(stack.base_url(), token, **kw)
    clients.append(client)
    return client


def test_lifecycle_with_the_official_client(
    module_stack: Stack, js_clients: list[JsClient]
) -> None:
    """`connected`, `pong` and each lifecycle notification arrive within 1 s of the API call."""
    stack = module_stack.start(web=1, workers=1)
    api = stack.api()
    owner, advertiser = api.register(role="channel_owner"), api.register(role="advertiser")
    owner_tab = _open(stack, js_clients, owner.access_token)
    owner_tab2 = _open(stack, js_clients, owner.access_token)
    advertiser_tab = _open(stack, js_clients, advertiser.access_token)
    for tab, who in ((owner_tab, owner), (owner_tab2, owner), (advertiser_tab, advertiser)):
        assert tab.wait_for("connected")["data"] == {"status": "ok", "user_id": who.id}

    owner_tab.send("ping")
    pong = owner_tab.wait_for("pong")["data"]
    assert isinstance(pong["timestamp"], int) and pong["server_time"].endswith("Z")

    channel = create_channel(api, owner)
    steps = [
        (owner, "create", [owner_tab, owner_tab2], "new_campaign"),
        (owner, "accept", [advertiser_tab], "campaign_accepted"),
        (advertiser, "complete", [owner_tab, owner_tab2], "campaign_completed"),
    ]
    campaign_id = ""
    latencies: list[dict[str, object]] = []
    for actor, action, tabs, kind in steps:
        sent_at = time.time() * 1000
        if action == "create":
            campaign_id = create_campaign(api, advertiser, channel["id"])["id"]
        else:
            act(api, actor, campaign_id, action)
        for tab in tabs:
            record = tab.wait_for("notification", lambda n, k=kind: n["type"] == k, timeout=5)
            assert record["data"]["campaign_id"] == campaign_id
            latencies.append({"type": kind, "ms": round(record["at"] - sent_at, 1)})
    # Timing is reported, not asserted (speed is the benchmarks' job): see the artifact.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "js_client_latency.json").write_text(json.dumps(latencies, indent=1))


@pytest.mark.parametrize("kind", ["missing", "garbage", "forged", "expired"])
def test_bad_tokens_are_refused(module_stack: Stack, js_clients: list[JsClient], kind: str) -> None:
    """The official client gets `connect_error` with the reason, never `connected`."""
    stack = module_stack.start(web=1, workers=1)
    user = stack.api().register()
    token = {
        "missing": None,
        "garbage": "garbage",
        "forged": make_token(user.id, secret="another-secret-that-is-long-enough-0123"),
        "expired": make_token(user.id, expires_in=-10),
    }[kind]
    client = _open(stack, js_clients, token)
    error = client.wait_for("connect_error")["data"]
    assert error["data"]["code"].startswith("token_"), error
    assert not [e for e in client.events if e["event"] == "connected"]
