"""What an operator sees: /metrics, /health?deep=1, Flower behind a password, demo data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import processes
from tests.support.clients import Api
from tests.support.environment import TEST_HEALTH_TOKEN
from tests.support.flows import create_campaign, create_channel
from tests.support.net import free_port
from tests.support.paths import ARTIFACTS_DIR, REPO_ROOT
from tests.support.stack import Stack

HEALTH_HEADER = {"X-Health-Token": TEST_HEALTH_TOKEN}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: Api) -> Samples:
    """Every sample of /metrics, parsed by the official Prometheus parser."""
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value, 0 when absent (a counter nobody has touched yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `check` until it holds or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def keep(name: str, body: object) -> None:
    """Write a JSON artifact for the report."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS_DIR / name).write_text(json.dumps(body, indent=1))


def test_metrics_follow_real_clients_and_count_deliveries(module_stack: Stack) -> None:
    """The connection gauges (read on another web process) follow sockets; counters move."""
    stack = module_stack.start(web=2, workers=1, beat=True)
    api, other = stack.api(0), stack.api(1)
    before = scrape(other)
    base_conn = value(before, "admarket_websocket_connections")
    base_users = value(before, "admarket_websocket_users")
    owner, advertiser = api.register(role="channel_owner"), api.register(role="advertiser")
    tabs = [stack.live(owner.access_token), stack.live(owner.access_token)]
    tabs.append(stack.live(advertiser.access_token))

    def gauges() -> tuple[float, float]:
        now = scrape(other)
        return (
            value(now, "admarket_websocket_connections") - base_conn,
            value(now, "admarket_websocket_users") - base_users,
        )

    assert eventually(lambda: gauges() == (3, 2)), gauges()

    create_campaign(api, advertiser, create_channel(api, owner)["id"])
    tabs[0].wait_for(lambda n: n["type"] == "new_campaign", timeout=5)

    def moved() -> bool:
        now = scrape(other)
        return (
            value(now, "admarket_deliveries_total", channel="inbox", outcome="sent")
            >= value(before, "admarket_deliveries_total", channel="inbox", outcome="sent") + 1
            and value(now, "admarket_commit_to_emit_seconds_count")
            >= value(before, "admarket_commit_to_emit_seconds_count") + 1
            and value(now, "admarket_notifications_created_total", channel="inbox")
            >= value(before, "admarket_notifications_created_total", channel="inbox") + 1
            # The two welcome emails and the new-campaign email, written to the outbox.
            and value(now, "admarket_emails_total", provider_status="outbox")
            >= value(before, "admarket_emails_total", provider_status="outbox") + 3
        )

    assert eventually(moved), scrape(other)
    for tab in tabs[1:]:
        tab.disconnect()
    assert eventually(lambda: gauges() == (1, 1)), gauges()

    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "run-job", "update_platform_stats"],
        cwd=stack.cwd, env={**os.environ, **stack.env}, check=True, capture_output=True,
        timeout=60,
    )  # fmt: skip
    jobs = scrape(other)
    stamp = value(jobs, "admarket_job_last_success_timestamp_seconds", job="update_platform_stats")
    assert time.time() - 120 < stamp <= time.time()
    assert all(
        value(jobs, "admarket_metrics_source_up", source=s) == 1
        for s in ("redis_presence", "redis_counters", "database_jobs")
    )


def test_deep_health_proves_every_part(module_stack: Stack) -> None:
    """Database, Redis, the listener, a worker on each queue and beat all answer."""
    stack = module_stack.start(web=2, workers=1, beat=True)
    response = stack.api(1).get("/health?deep=1", headers=HEALTH_HEADER, timeout=20)
    body = response.json()
    keep("health_deep_running.json", body)

    assert response.status_code == 200, body
    assert body["status"] == "ok"
    checks = body["checks"]
    for name in ("database", "redis", "message_queue", "beat"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["redis"]["socketio_listeners"] >= 2
    for queue in ("realtime", "email", "maintenance"):
        assert checks["workers"][queue]["status"] == "ok", checks["workers"]
        assert checks["workers"][queue]["worker"].startswith("worker")
    # The test stack runs with CORS '*', which production would refuse.
    assert any(w.startswith("WEBSOCKET_CORS_ORIGINS") for w in body["warnings"])
    shallow = stack.api(1).get("/health").json()
    assert "checks" not in shallow and shallow["status"] == "ok"


def _flower_env(stack: Stack, **extra: str) -> dict[str, str]:
    """The stack's settings, Flower's, and a PATH on which `celery` is this venv's."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**stack.env, "PATH": path, "PYTHONPATH": str(REPO_ROOT), **extra}


@pytest.mark.one_backend  # Flower, its password and Celery's task events: no database
def test_flower_asks_for_the_password(module_stack: Stack) -> None:
    """Flower from the Procfile's script: 401 without credentials; with them, it sees tasks."""
    stack = module_stack.start(web=1, workers=1)
    port = free_port()
    env = _flower_env(stack, FLOWER_BASIC_AUTH="ops:flower-test-pass", FLOWER_PORT=str(port))
    flower = processes.start_tcp_server(
        ["sh", "scripts/flower.sh"], port, stack.log_dir, "flower", env=env
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, auth=("ops", "wrong"), timeout=10).status_code == 401
        assert requests.get(url, auth=("ops", "flower-test-pass"), timeout=10).status_code == 200
        # Workers send task events only when asked (celeryconfig.py): Flower asks, so a
        # delivery performed while it watches shows up in its task list.
        api = stack.api(0)
        owner, advertiser = api.register("channel_owner"), api.register("advertiser")
        channel_id = create_channel(api, owner)["id"]

        def seen() -> bool:
            create_campaign(api, advertiser, channel_id)
            return eventually(lambda: _flower_saw(url, "notifications.deliver_live"), 3.0)

        assert eventually(seen, 45.0), "Flower never saw a delivery task"
    finally:
        flower.close()


def _flower_saw(url: str, task_name: str) -> bool:
    """Whether Flower's task list holds a succeeded task of this name."""
    response = requests.get(
        f"{url}api/tasks", auth=("ops", "flower-test-pass"), params={"limit": 50}, timeout=10
    )
    tasks = response.json().values() if response.status_code == 200 else []
    return any(t.get("name") == task_name and t.get("state") == "SUCCESS" for t in tasks)


@pytest.mark.one_backend  # the start script's checks, before anything connects anywhere
def test_flower_refuses_to_run_open_unless_allowed_outside_production(module_stack: Stack) -> None:
    """No password: refused; ALLOW_OPEN_FLOWER is honoured in development only."""
    for extra in ({}, {"ALLOW_OPEN_FLOWER": "true", "APP_ENV": "production"}):
        done = subprocess.run(
            ["sh", "scripts/flower.sh"], cwd=REPO_ROOT, env=_flower_env(module_stack, **extra),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 64, done.stderr
        assert "refusing to start" in done.stderr


@pytest.mark.one_backend  # a settings check at import, before any database connection
def test_production_web_refuses_cors_star(module_stack: Stack) -> None:
    """The web process stops at start, naming the variable, before serving anything."""
    env = {
        **module_stack.env,
        "APP_ENV": "production",
        "JWT_SECRET_KEY": "a-real-production-secret-0123456789abcdef",
        "WEBSOCKET_CORS_ORIGINS": "*",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=REPO_ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "WEBSOCKET_CORS_ORIGINS" in done.stderr


def test_demo_command_prints_logins_that_work(module_stack: Stack) -> None:
    """`flask --app wsgi demo` twice: the printed logins sign in, the channel is listed."""
    stack = module_stack.start(web=1, workers=1)
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "demo", "--domain", "demo.test"]
    for _ in range(2):
        done = subprocess.run(
            command, cwd=REPO_ROOT, env={**os.environ, **stack.env}, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert "owner@demo.test" in done.stdout and "demo-password" in done.stdout
    for who in ("admin", "owner", "advertiser"):
        login = stack.api().post(
            "/api/auth/login", json={"email": f"{who}@demo.test", "password": "demo-password"}
        )
        assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    names = [c["name"] for c in stack.api(token=token).get("/api/channels").json()]
    assert names.count("Demo channel") == 1


def test_deep_health_without_a_worker(module_stack: Stack) -> None:
    """With every worker stopped, the canaries go unanswered: 503, and the rest still ok."""
    stack = module_stack.start(web=1, workers=1, beat=True)
    for worker in stack.workers:
        worker.stop()
    began = time.monotonic()
    response = stack.api().get("/health?deep=1", headers=HEALTH_HEADER, timeout=20)
    took = time.monotonic() - began
    body = response.json()
    keep("health_deep_no_worker.json", {**body, "took_seconds": round(took, 2)})

    assert response.status_code == 503, body
    assert body["status"] == "fail"
    assert all(c["status"] == "fail" for c in body["checks"]["workers"].values())
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["message_queue"]["status"] == "ok"
    assert took < 10
