"""The REST API against hostile and careless clients: rate limits, body caps, CORS, deep health."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import StackFactory
from tests.support.clients import Api, unique_email
from tests.support.environment import TEST_HEALTH_TOKEN
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack

# Limits live in Redis and in front of the database: the backend changes nothing here.
pytestmark = pytest.mark.one_backend

LIMITED = {
    "RATE_LIMIT_ENABLED": "true",
    # One proxy in front, as behind Heroku's router: tests pick the client address per call.
    "TRUSTED_PROXY_COUNT": "1",
    "RATE_LIMIT_LOGIN_ACCOUNT": "5/3 seconds",
    "RATE_LIMIT_LOGIN_ADDRESS": "20/minute",
    "RATE_LIMIT_REGISTER": "10/minute",
    "RATE_LIMIT_REFRESH": "5/minute",
    "RATE_LIMIT_PASSWORD_RESET": "3/minute",
    "RATE_LIMIT_WRITES": "10/minute",
}


def address() -> str:
    """A client address of its own (written by the trusted proxy; no traffic goes there)."""
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}-{uuid.uuid4().hex[:6]}"


def from_address(addr: str) -> dict[str, str]:
    """Headers of a call the trusted proxy forwards for `addr`."""
    return {"X-Forwarded-For": addr}


@pytest.fixture
def limited(make_stack: StackFactory) -> Iterator[Stack]:
    """A web process with rate limits on and short windows."""
    yield make_stack(extra_env=LIMITED).start(web=1, workers=0)


def assert_rate_limited(response: requests.Response) -> None:
    """A 429 in the API's error shape, saying when to come back."""
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 0


def test_wrong_passwords_are_slowed_per_account_and_reset(limited: Stack) -> None:
    """40 wrong passwords: 429 by the 10th; another account logs in meanwhile; then it resets."""
    api = limited.api()
    victim, bystander = api.register(), api.register()
    attacker, other = address(), address()
    statuses = []
    for _ in range(40):
        response = api.post(
            "/api/auth/login",
            json={"email": victim.email, "password": "wrong-password-123"},
            headers=from_address(attacker),
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert_rate_limited(response)
    first_429 = statuses.index(429) + 1
    print(f"\nfirst 429 at attempt {first_429}; statuses {statuses}")
    assert first_429 <= 10
    assert set(statuses) <= {401, 429} and 500 not in statuses
    # Meanwhile, somebody else signs in from elsewhere.
    ok = api.post(
        "/api/auth/login",
        json={"email": bystander.email, "password": bystander.password},
        headers=from_address(other),
    )
    assert ok.status_code == 200, ok.text
    # The account's limit counts failures in a sliding window: two windows later it is clear.
    time.sleep(6.5)
    again = api.post(
        "/api/auth/login",
        json={"email": victim.email, "password": victim.password},
        headers=from_address(attacker),
    )
    assert again.status_code == 200, again.text


def test_an_address_rotating_accounts_is_slowed(limited: Stack) -> None:
    """One address trying 40 different accounts meets its own limit (20/minute here)."""
    api = limited.api()
    attacker = address()
    statuses = [
        api.post(
            "/api/auth/login",
            json={"email": unique_email("nobody"), "password": "wrong-password-123"},
            headers=from_address(attacker),
        ).status_code
        for _ in range(40)
    ]
    assert statuses.index(429) == 20, statuses
    assert set(statuses) == {401, 429}


def test_forwarded_for_is_ignored_without_a_trusted_proxy(make_stack: StackFactory) -> None:
    """With TRUSTED_PROXY_COUNT=0 a client cannot pose as new addresses to dodge limits."""
    stack = make_stack(extra_env={**LIMITED, "TRUSTED_PROXY_COUNT": "0"}).start(web=1, workers=0)
    api = stack.api()
    statuses = [
        api.post(
            "/api/auth/login",
            json={"email": unique_email("nobody"), "password": "wrong-password-123"},
            headers=from_address(address()),
        ).status_code
        for _ in range(25)
    ]
    assert 429 in statuses, statuses


def test_a_crowd_of_registrations_from_one_address(limited: Stack) -> None:
    """60 registrations at once from one address: 10 pass, the rest are 429, none fails."""
    api = limited.api()
    attacker = address()

    def register(_: int) -> requests.Response:
        body = {
            "email": unique_email("crowd"),
            "password": "correct-horse-battery-staple-42",
            "name": "Crowd",
            "role": "advertiser",
        }
        return Api(api.base_url).post(
            "/api/auth/register", json=body, headers=from_address(attacker)
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(register, range(60)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 10, statuses
    for response in responses:
        if response.status_code != 201:
            assert_rate_limited(response)


def test_refresh_is_limited(limited: Stack) -> None:
    """Token refresh from one address: 5 a minute here."""
    api = limited.api()
    user = api.register()
    attacker = address()
    statuses = [
        api.post(
            "/api/auth/refresh",
            json={"refresh_token": user.refresh_token},
            headers=from_address(attacker),
        ).status_code
        for _ in range(8)
    ]
    assert statuses == [200] * 5 + [429] * 3


def test_wrong_current_passwords_count_against_the_login_limit(limited: Stack) -> None:
    """A signed-in thief guessing the current password meets the account's login limit."""
    api = limited.api()
    user = api.register()
    body = {"current_password": "a-guess-123", "new_password": "whatever-new-1"}
    statuses = [
        api.as_user(user).post("/api/auth/password", json=body).status_code for _ in range(7)
    ]
    assert statuses[:5] == [403] * 5 and statuses[5:] == [429, 429], statuses


def test_password_reset_requests_are_limited(limited: Stack) -> None:
    """Reset requests from one address: 3 a minute here, whatever addresses they name."""
    api = limited.api()
    attacker = address()
    statuses = [
        api.post(
            "/api/auth/password-reset",
            json={"email": unique_email("someone")},
            headers=from_address(attacker),
        ).status_code
        for _ in range(5)
    ]
    assert statuses == [202] * 3 + [429] * 2


def test_writes_are_limited_per_user_not_per_address(limited: Stack) -> None:
    """One owner's 11th write in a minute is refused; another user, same address, is not."""
    api = limited.api()
    shared = address()
    owner, other = api.register("channel_owner"), api.register("channel_owner")
    body = {"name": "News", "platform": "telegram", "url": "https://t.me/n", "price": "10.00"}
    statuses = [
        api.as_user(owner)
        .post("/api/channels", json=body, headers=from_address(shared))
        .status_code
        for _ in range(12)
    ]
    assert statuses == [201] * 10 + [429] * 2
    # Reads are not writes.
    assert api.as_user(owner).get("/api/channels").status_code == 200
    response = api.as_user(other).post("/api/channels", json=body, headers=from_address(shared))
    assert response.status_code == 201, response.text


def test_an_oversized_body_is_refused_before_it_is_read(module_stack: Stack) -> None:
    """A 20 MiB body: 413 in the API's shape at once; the server answers the next call."""
    stack = module_stack.start(web=1, workers=0)
    api = stack.api()
    user = api.register()
    huge = b'{"title": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    began = time.monotonic()
    response = api.as_user(user).post(
        "/api/campaigns", data=huge, headers={"Content-Type": "application/json"}
    )
    took = time.monotonic() - began
    print(f"\n20 MiB body: {response.status_code} in {took * 1000:.0f} ms")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    # A chunked body declares no length: werkzeug stops reading it at the cap.
    chunks = (b"x" * 65536 for _ in range(40))
    chunked = api.as_user(user).post(
        "/api/campaigns", data=chunks, headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413, chunked.text
    assert api.get("/health").status_code == 200


def test_cors_answers_the_front_end_only(module_stack: Stack) -> None:
    """FRONTEND_URL's origin gets CORS headers and preflight answers; another origin none."""
    stack = module_stack.start(web=1, workers=0)
    api = stack.api()
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    good = api.request(
        "OPTIONS", "/api/campaigns", headers={"Origin": "http://frontend.test", **preflight}
    )
    assert good.status_code == 200
    assert good.headers["Access-Control-Allow-Origin"] == "http://frontend.test"
    assert "authorization" in good.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in good.headers
    call = api.get("/api/channels", headers={"Origin": "http://frontend.test"})
    assert call.headers["Access-Control-Allow-Origin"] == "http://frontend.test"
    assert "Retry-After" in call.headers["Access-Control-Expose-Headers"]
    evil = api.request(
        "OPTIONS", "/api/campaigns", headers={"Origin": "https://evil.test", **preflight}
    )
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_deep_health_needs_a_token_or_an_admin(module_stack: Stack) -> None:
    """Anonymous deep checks get the cheap answer; HEALTH_TOKEN and an admin get the round trips."""
    stack = module_stack.start(web=1, workers=0)
    api = stack.api()
    anonymous = api.get("/health?deep=1")
    assert anonymous.status_code == 200
    assert "checks" not in anonymous.json() and "skipped" in anonymous.json()["deep"]
    wrong = api.get("/health?deep=1", headers={"X-Health-Token": "guess"})
    assert "checks" not in wrong.json()
    user = api.register()
    assert "checks" not in api.as_user(user).get("/health?deep=1").json()
    monitored = api.get("/health?deep=1", headers={"X-Health-Token": TEST_HEALTH_TOKEN}, timeout=20)
    assert "checks" in monitored.json()
    admin = stack.create_admin()
    assert "checks" in api.as_user(admin).get("/health?deep=1", timeout=20).json()


def test_limits_hold_per_process_while_redis_is_down(
    make_stack: StackFactory, private_redis: RedisServer
) -> None:
    """Redis stopped: logins still answer (401, then 429 from the in-memory fallback), no 500."""
    stack = make_stack(redis_url=private_redis.url, extra_env=LIMITED).start(web=1, workers=0)
    api = stack.api()
    user = api.register()
    private_redis.stop()
    try:
        attacker = address()
        statuses = [
            api.post(
                "/api/auth/login",
                json={"email": user.email, "password": "wrong-password-123"},
                headers=from_address(attacker),
            ).status_code
            for _ in range(12)
        ]
        assert 500 not in statuses and 429 in statuses, statuses
        health = api.get("/health").json()
        assert health["rate_limits"].startswith("fallback"), health
    finally:
        private_redis.start()
