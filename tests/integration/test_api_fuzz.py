"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis).

Every operation the running web process documents at /api/openapi.json gets generated requests,
valid and invalid (schemathesis' examples, coverage and fuzzing phases, positive and negative
data, unexpected HTTP methods), sent with a real bearer token to a real gunicorn process on each
database backend. Whatever comes in, the answer must never be a 5xx, and every 4xx must be
SPEC.md's JSON error shape, matching the error schema the document declares.

No operation is excluded: /health, the SendGrid webhook and the email previews are fuzzed like
the rest. Two answers are let through because they are not a crash of the app: /health's 503
when it finds a dependency down (its job), and gunicorn's own HTML 400 for a request line longer
than it accepts (sent before any app code runs, so no app handler can shape it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.support.clients import Account
from tests.support.flows import act, create_campaign, create_channel
from tests.support.paths import ARTIFACTS_DIR
from tests.support.stack import Stack

# Hypothesis caches (unicode tables, constants) go under git-ignored test-artifacts/, not into a
# .hypothesis/ in the work tree; the example database is off altogether (see api_schema).
set_hypothesis_home_dir(ARTIFACTS_DIR / "hypothesis")

# Fixed, so CI generates the same requests on every run and a failure found there is found
# again on a developer's machine.
SEED = 20250611
# Hypothesis examples per operation in the fuzzing phase (the coverage phase adds its own
# deterministic cases on top). Bounded so one backend's three runs stay well under a minute.
MAX_EXAMPLES = {"admin": 20, "advertiser": 50, "channel_owner": 20}
# gunicorn's default limit_request_line; gunicorn.conf.py leaves it as it is.
GUNICORN_LIMIT_REQUEST_LINE = 4094


@pytest.fixture(scope="module")
def world(module_stack: Stack) -> dict[str, Any]:
    """A user of each role and real resources in every state, for path parameters to hit."""
    stack = module_stack.start(web=1, workers=1)
    api = stack.api()
    owner = api.register(role="channel_owner")
    advertiser = api.register(role="advertiser")
    channel = create_channel(api, owner)
    paid = create_campaign(api, advertiser, channel["id"], title="Paid")
    act(api, owner, paid["id"], "accept")
    act(api, advertiser, paid["id"], "complete")
    accepted = create_campaign(api, advertiser, channel["id"], title="Accepted")
    act(api, owner, accepted["id"], "accept")
    pending = create_campaign(api, advertiser, channel["id"], title="Pending")
    withdrawal = api.as_user(owner).post("/api/withdrawals", json={"amount": "1.00"})
    assert withdrawal.status_code == 201, withdrawal.text
    inboxes = [api.as_user(who).get("/api/notifications").json() for who in (owner, advertiser)]
    return {
        "accounts": {
            "admin": stack.create_admin(),
            "advertiser": advertiser,
            "channel_owner": owner,
        },
        # Real values the generated path parameters are sometimes swapped for.
        "known": {
            "campaign_id": [paid["id"], accepted["id"], pending["id"]],
            "withdrawal_id": [withdrawal.json()["id"]],
            "notification_id": [n["id"] for inbox in inboxes for n in inbox[:2]],
            "kind": ["welcome", "new_campaign"],
            "locale": ["en", "ru"],
        },
    }


@pytest.fixture(params=sorted(MAX_EXAMPLES))
def api_schema(
    request: pytest.FixtureRequest, module_stack: Stack, world: dict[str, Any]
) -> schemathesis.BaseSchema:
    """The live OpenAPI document, every request signed in as the parametrized role."""
    role = request.param
    token = world["accounts"][role].access_token
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "request-timeout": 15,
            # "none": no Hypothesis example database, so no .hypothesis/ in the work tree.
            "generation": {"max-examples": MAX_EXAMPLES[role], "database": "none"},
        }
    )
    schema = schemathesis.openapi.from_url(
        f"{module_stack.base_url()}/api/openapi.json", config=config, timeout=15
    )
    known: dict[str, list[str]] = world["known"]

    @schema.hook
    def flatmap_path_parameters(
        ctx: schemathesis.HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        """Keep the generated value or take a real id, so lifecycle actions succeed too."""
        if not path_parameters:  # None for operations without path parameters
            return st.just(path_parameters)
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([value, *known.get(name, [])])
                for name, value in path_parameters.items()
            }
        )

    return schema


def _health_verdict(response: schemathesis.Response, case: schemathesis.Case) -> bool:
    """Whether this is /health answering 503 because a dependency is down, as it should.

    The fuzz stack runs no beat, so `/health?deep=1` rightly reports it: that 503 is the health
    check's verdict on the platform, not a crash caused by the request.
    """
    if case.operation.path != "/health" or response.status_code != 503:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") in {"degraded", "fail"}


def no_server_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """schemathesis' not_a_server_error, save for /health's verdict on its dependencies."""
    if _health_verdict(response, case):
        return None
    return not_a_server_error(ctx, response, case)


def _refused_by_gunicorn(response: schemathesis.Response) -> bool:
    """Whether gunicorn's HTTP parser refused the request line before the app could see it.

    The fuzzer sometimes repeats a query parameter dozens of times; past gunicorn's
    limit_request_line gunicorn itself answers an HTML 400 and no Flask code runs, so there is
    no app error handler that could shape that answer.
    """
    request = response.request
    line = f"{request.method} {request.path_url} HTTP/1.1"
    return response.status_code == 400 and len(line.encode()) > GUNICORN_LIMIT_REQUEST_LINE


def error_shape(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """A 4xx is JSON `{"error": {"code", "message", "details"?}}`, as SPEC.md says."""
    if not 400 <= response.status_code < 500 or _refused_by_gunicorn(response):
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} with Content-Type {content_type!r}, not JSON"
    )
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} body is not JSON: {exc}") from None
    assert isinstance(body, dict) and set(body) == {"error"}, f"not an error envelope: {body!r}"
    error = body["error"]
    assert isinstance(error, dict), f"error is not an object: {error!r}"
    assert set(error) <= {"code", "message", "details"}, f"unexpected keys: {sorted(error)}"
    assert isinstance(error.get("code"), str) and error["code"], f"no code: {error!r}"
    assert isinstance(error.get("message"), str) and error["message"], f"no message: {error!r}"


def error_as_documented(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any
) -> bool | None:
    """A 4xx also matches the error schema the OpenAPI document gives for it.

    Limited to 4xx: success bodies are the views' business, and /health documents none.
    """
    if not 400 <= response.status_code < 500 or _refused_by_gunicorn(response):
        return None
    return response_schema_conformance(ctx, response, case)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Give the test item the `_nodeid` attribute schemathesis' lazy schemas expect.

    schemathesis 4.32.5 reads and rewrites `Function._nodeid` (to suffix each operation), which
    pytest 9.2 no longer has (the id lives in `_id`). A plain attribute keeps both happy:
    schemathesis' renaming becomes a no-op, and each operation is still reported as a subtest.
    """
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_fuzz(case: schemathesis.Case) -> None:
    """No generated request gets a 5xx; every 4xx is the JSON error shape, as documented."""
    case.call_and_validate(checks=[no_server_error, error_shape, error_as_documented])


# --- What the fuzzer found, pinned: each was a 500 ----------------------------------

LONG_PASSWORD = "пароль-" * 10  # 70 characters, 130 bytes: more than bcrypt takes
REGISTER = {"email": "long@example.com", "name": "L", "role": "advertiser"}
CAMPAIGN = {"title": "t", "content": "c"}


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "status", "where"),
    [
        # bcrypt refuses passwords over 72 bytes: registering with one is a validation error...
        pytest.param(
            None, "POST", "/api/auth/register", {**REGISTER, "password": LONG_PASSWORD}, 422,
            "json.password", id="register-long-password",
        ),
        # ...and signing in with one simply does not match.
        pytest.param(
            "login", "POST", "/api/auth/login", {"password": LONG_PASSWORD}, 401, None,
            id="login-long-password",
        ),
        # Seqs are 32-bit integers; larger ones overflowed SQLite's integer binding.
        pytest.param(
            "advertiser", "GET", "/api/notifications?after_seq=9223372036854775808", None, 422,
            "query.after_seq", id="after-seq-overflow",
        ),
        pytest.param(
            "advertiser", "GET", "/api/notifications?before=100000000000000000000", None, 422,
            "query.before", id="before-overflow",
        ),
        # PostgreSQL can neither store nor compare text holding NUL.
        pytest.param(
            "advertiser", "GET", "/api/campaigns/a%00b", None, 422, "path", id="nul-campaign-id",
        ),
        pytest.param(
            "channel_owner", "POST", "/api/notifications/x%00/read", None, 422, "path",
            id="nul-notification-id",
        ),
        pytest.param(
            "login", "POST", "/api/auth/login", {"password": "x\u0000"}, 422, "json.password",
            id="nul-login",
        ),
        pytest.param(
            "advertiser", "POST", "/api/campaigns", {**CAMPAIGN, "channel_id": "a\u0000"}, 422,
            "json.channel_id", id="nul-channel-id",
        ),
        pytest.param(
            "admin", "POST", "/api/admin/broadcast", {"title": "hi\u0000", "message": "m"}, 422,
            "json.title", id="nul-broadcast",
        ),
    ],
)  # fmt: skip
def test_fuzz_findings_are_clean_4xx(
    module_stack: Stack,
    world: dict[str, Any],
    role: str | None,
    method: str,
    path: str,
    body: Any,
    status: int,
    where: str | None,
) -> None:
    """Inputs that used to crash a view are refused in SPEC.md's error shape, naming the field."""
    accounts: dict[str, Account] = world["accounts"]
    if role == "login":
        role, body = None, {"email": accounts["advertiser"].email, **body}
    api = module_stack.api()
    client = api.as_user(accounts[role]) if role else api
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] and error["message"], error
    if where:
        location, _, field = where.partition(".")
        assert location in error["details"], error
        if field:
            assert field in error["details"][location] and field in error["message"], error
