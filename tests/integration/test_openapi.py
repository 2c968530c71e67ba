"""The OpenAPI document is generated from the same schemas that validate requests."""

from __future__ import annotations

import pytest

from tests.support.stack import Stack

# The document is generated from the request schemas; no database is involved.
pytestmark = pytest.mark.one_backend

SPEC_PATHS = {
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("get", "/api/users/me"),
    ("post", "/api/channels"),
    ("get", "/api/channels"),
    ("post", "/api/campaigns"),
    ("get", "/api/campaigns"),
    ("get", "/api/campaigns/{campaign_id}"),
    ("post", "/api/campaigns/{campaign_id}/accept"),
    ("post", "/api/campaigns/{campaign_id}/reject"),
    ("post", "/api/campaigns/{campaign_id}/complete"),
    ("post", "/api/campaigns/{campaign_id}/cancel"),
    ("post", "/api/withdrawals"),
    ("get", "/api/withdrawals"),
    ("post", "/api/withdrawals/{withdrawal_id}/process"),
    ("post", "/api/withdrawals/{withdrawal_id}/reject"),
    ("get", "/api/notifications"),
    ("get", "/api/notifications/unread-count"),
    ("post", "/api/notifications/{notification_id}/read"),
    ("post", "/api/notifications/read-all"),
    ("post", "/api/admin/broadcast"),
    ("get", "/api/admin/broadcasts/{broadcast_id}"),
    ("get", "/api/admin/audit"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/password"),
    ("post", "/api/auth/password-reset"),
    ("post", "/api/auth/password-reset/confirm"),
    ("get", "/health"),
}


def test_openapi_document_covers_the_rest_contract(module_stack: Stack) -> None:
    """Every SPEC.md route is documented, with request schemas and bearer security."""
    stack = module_stack.start(web=1, workers=0)
    doc = stack.api().get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert documented >= SPEC_PATHS, sorted(SPEC_PATHS - documented)
    create = doc["paths"]["/api/campaigns"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert set(schema["required"]) == {"channel_id", "title", "content"}
    assert create["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "429" in doc["paths"]["/api/auth/login"]["post"]["responses"]
