"""The audit trail: every admin action with who, what, when and from where; paged, admins only."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.flows import create_channel
from tests.support.stack import Stack

# What is checked is the trail's content; the storage is the same on both backends.
pytestmark = pytest.mark.one_backend


def test_admin_actions_are_recorded_and_paged(module_stack: Stack) -> None:
    stack = module_stack.start(web=1, workers=1)
    admin = stack.create_admin()  # the CLI command: recorded as admin.create from "cli"
    api = stack.api()
    admin_api = api.as_user(admin)
    owner = api.register("channel_owner")
    create_channel(api, owner)
    # Give the owner money to withdraw, as a completed campaign would.
    with stack.engine().begin() as conn:
        conn.execute(text("UPDATE users SET balance = 500000 WHERE id = :id"), {"id": owner.id})
    wanted = [
        api.as_user(owner).post("/api/withdrawals", json={"amount": "100.00"}).json()["id"]
        for _ in range(2)
    ]
    ua = {"User-Agent": "audit-test/1.0"}
    assert admin_api.post(f"/api/withdrawals/{wanted[0]}/process", headers=ua).status_code == 200
    assert admin_api.post(f"/api/withdrawals/{wanted[1]}/reject", headers=ua).status_code == 200
    sent = admin_api.post(
        "/api/admin/broadcast", json={"title": "Hi", "message": "All"}, headers=ua
    )
    assert sent.status_code == 202

    first = admin_api.get("/api/admin/audit?limit=2").json()
    assert [e["action"] for e in first["events"]] == ["broadcast.create", "withdrawal.reject"]
    newest = first["events"][0]
    assert (newest["actor_id"], newest["actor_email"]) == (admin.id, admin.email)
    assert newest["address"] == "127.0.0.1" and newest["user_agent"] == "audit-test/1.0"
    assert newest["target_id"] == sent.json()["id"] and newest["details"]["title"] == "Hi"
    rest = admin_api.get(f"/api/admin/audit?limit=50&before={first['next_before']}").json()
    actions = [e["action"] for e in rest["events"]]
    assert actions[0] == "withdrawal.process" and rest["next_before"] is None
    created = [
        e for e in rest["events"] if e["action"] == "admin.create" and e["target_id"] == admin.id
    ]
    assert created and created[0]["address"] == "cli" and created[0]["actor_id"] is None

    assert api.as_user(owner).get("/api/admin/audit").status_code == 403
    assert api.get("/api/admin/audit").status_code == 401
    assert admin_api.get("/api/admin/audit?limit=0").status_code == 422
