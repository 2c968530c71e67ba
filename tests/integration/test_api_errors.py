"""Bad input gets a clear 4xx JSON error naming the problem, never a 500, and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.support.clients import Account, Api
from tests.support.flows import act, create_campaign, create_channel
from tests.support.stack import Stack

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _error(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Check SPEC.md's error shape and status; return the error object."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code, error
    return error


@pytest.fixture(scope="module")
def world(module_stack: Stack) -> dict[str, Any]:
    """Two owners, two advertisers, a channel each and a pending campaign."""
    stack = module_stack.start(web=1, workers=1)
    api = stack.api()
    owner, other_owner = api.register(role="channel_owner"), api.register(role="channel_owner")
    advertiser, other_adv = api.register(role="advertiser"), api.register(role="advertiser")
    channel = create_channel(api, owner)
    campaign = create_campaign(api, advertiser, channel["id"])
    return {
        "api": api,
        "owner": owner,
        "other_owner": other_owner,
        "advertiser": advertiser,
        "other_adv": other_adv,
        "channel": channel,
        "campaign": campaign,
    }


def _as(world: dict[str, Any], who: str) -> Api:
    """The API client signed in as one of the world's users."""
    account: Account = world[who]
    return world["api"].as_user(account)


def test_malformed_json(world: dict[str, Any]) -> None:
    """A body that is not JSON is a 400 invalid_json."""
    response = _as(world, "advertiser").request(
        "POST", "/api/campaigns", data="{not json", headers={"Content-Type": "application/json"}
    )
    _error(response, 400, "invalid_json")


def test_json_nested_too_deeply_is_400_on_any_route(world: dict[str, Any]) -> None:
    """Python's json recurses once per level: 100,000 levels must not be a 500 anywhere."""
    body = "[" * 100_000 + "]" * 100_000
    for path in ("/api/campaigns", "/api/auth/login", "/api/users/me/preferences"):
        response = _as(world, "advertiser").request(
            "POST", path, data=body, headers={"Content-Type": "application/json"}
        )
        _error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "channel_id"),
        ({"channel_id": 5, "title": "t", "content": "c"}, "channel_id"),
        ({"channel_id": "x", "title": "", "content": "c"}, "title"),
        ({"channel_id": "x", "title": "t", "content": "c", "price": "1.234"}, "price"),
        ({"channel_id": "x", "title": "t", "content": "c", "price": "-5"}, "price"),
        ({"channel_id": "x", "title": "t", "content": "c", "price": "NaN"}, "price"),
        ({"channel_id": "x", "title": "t", "content": "c", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_campaign_fields_are_named(
    world: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    """Missing, mistyped, out-of-range and unknown fields are a 422 naming the field."""
    error = _error(_as(world, "advertiser").post("/api/campaigns", json=body), 422)
    assert error["code"] == "validation_error"
    assert field in error["message"] and field in error["details"]["json"]


def test_non_object_body(world: dict[str, Any]) -> None:
    """A JSON array where an object is expected is a 422, not a crash."""
    _error(_as(world, "advertiser").post("/api/campaigns", json=[1, 2]), 422, "validation_error")


@pytest.mark.parametrize(
    "query", ["limit=abc", "limit=0", "limit=100000", "after_seq=-1", "unread_only=maybe"]
)
def test_bad_query_parameters(world: dict[str, Any], query: str) -> None:
    """Query parameters are validated like bodies."""
    _error(_as(world, "owner").get(f"/api/notifications?{query}"), 422, "validation_error")


def test_unknown_ids_are_404(world: dict[str, Any]) -> None:
    """Unknown channels, campaigns, notifications and withdrawals are 404."""
    adv = _as(world, "advertiser")
    body = {"channel_id": UNKNOWN, "title": "t", "content": "c"}
    _error(adv.post("/api/campaigns", json=body), 404, "not_found")
    _error(adv.get(f"/api/campaigns/{UNKNOWN}"), 404, "not_found")
    _error(adv.post(f"/api/notifications/{UNKNOWN}/read"), 404, "not_found")
    _error(adv.get("/api/no-such-route"), 404)


def test_another_users_resources_are_404(world: dict[str, Any]) -> None:
    """Someone else's campaign or notification does not exist, as far as you can tell."""
    campaign_id = world["campaign"]["id"]
    _error(_as(world, "other_adv").get(f"/api/campaigns/{campaign_id}"), 404, "not_found")
    _error(_as(world, "other_owner").post(f"/api/campaigns/{campaign_id}/accept"), 404)
    inbox = _as(world, "owner").get("/api/notifications").json()
    _error(_as(world, "other_owner").post(f"/api/notifications/{inbox[0]['id']}/read"), 404)


def test_illegal_transitions_are_409(world: dict[str, Any], module_stack: Stack) -> None:
    """Completing a pending campaign, or accepting twice, is refused with from/to details."""
    api, owner, adv = world["api"], world["owner"], world["advertiser"]
    campaign = create_campaign(api, adv, world["channel"]["id"])
    error = _error(
        _as(world, "advertiser").post(f"/api/campaigns/{campaign['id']}/complete"),
        409,
        "invalid_transition",
    )
    assert error["details"] == {"from": "pending", "to": "completed"}
    act(api, owner, campaign["id"], "accept")
    _error(_as(world, "owner").post(f"/api/campaigns/{campaign['id']}/accept"), 409)


def test_wrong_role_and_missing_token(world: dict[str, Any]) -> None:
    """No token is 401; the wrong role is 403; an admin role cannot be registered."""
    _error(world["api"].get("/api/users/me"), 401, "token_missing")
    _error(world["api"].as_user("not-a-token").get("/api/users/me"), 401, "token_invalid")
    _error(_as(world, "advertiser").post("/api/withdrawals", json={"amount": "1"}), 403)
    body = {"name": "C", "platform": "telegram", "url": "https://t.me/c", "price": "1"}
    _error(_as(world, "advertiser").post("/api/channels", json=body), 403, "forbidden")
    register = {"email": "boss@example.com", "password": "password123", "name": "B"}
    _error(world["api"].post("/api/auth/register", json={**register, "role": "admin"}), 422)


def test_failed_withdrawal_changes_nothing(world: dict[str, Any]) -> None:
    """A withdrawal above the balance is refused and the balance stays as it was."""
    owner = _as(world, "other_owner")
    before = owner.get("/api/users/me").json()["balance"]
    _error(owner.post("/api/withdrawals", json={"amount": "1.00"}), 409, "insufficient_funds")
    assert owner.get("/api/users/me").json()["balance"] == before
    assert owner.get("/api/withdrawals").json() == []


def test_duplicate_email_is_409(world: dict[str, Any]) -> None:
    """Registering an email twice (in any case) is a conflict."""
    email = world["owner"].email.upper()
    body = {"email": email, "password": "password123", "name": "X", "role": "advertiser"}
    _error(world["api"].post("/api/auth/register", json=body), 409, "email_taken")
