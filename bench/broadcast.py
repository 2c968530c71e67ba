"""Broadcast fan-out: the admin's call, storing it for every user, reaching the connected ones.

    python -m bench.broadcast [--users 20000 100000] [--connected 2000]

For each population: a scratch PostgreSQL database with that many users, the web process and
one worker on every queue (as the Procfile runs them), `--connected` of the users listening
with socket.io-client (the Node swarm). Prints one JSON line per population: how long the POST
took, when the worker had stored it for every user, and when the last connected socket had it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from bench.stack import Environment, token
from bench.swarm import Swarm
from tests.support.net import free_port
from tests.support.processes import start_web, start_worker


def measure(users: int, connected: int, workdir: Path) -> dict[str, Any]:
    """One population: the three timings of one broadcast."""
    env = Environment(workdir)
    population = env.start(owners=users - 1, channels=1, advertisers=1)
    admin_id = population.advertisers[0]
    engine = sa.create_engine(env.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET role = 'admin' WHERE id = :id"), {"id": admin_id})
    engine.dispose()
    app_env = env.app_env("eventlet")
    port = free_port()
    web = start_web(app_env, port, env.log_dir, name="web")
    worker = start_worker(
        app_env, "worker", env.log_dir, queues="realtime,email,messengers,maintenance"
    )
    swarm = Swarm(processes=2)
    url = f"http://127.0.0.1:{port}"
    try:
        opened = swarm.connect(url, population.owner_tokens[:connected])
        swarm.reset()
        headers = {"Authorization": f"Bearer {token(admin_id)}"}
        began = time.time()
        response = requests.post(
            f"{url}/api/admin/broadcast",
            json={"title": "Maintenance", "message": "Tonight at 2"},
            headers=headers,
            timeout=60,
        )
        answered = time.time() - began
        assert response.status_code == 202, response.text
        progress_url = f"{url}/api/admin/broadcasts/{response.json()['id']}"
        progress: dict[str, Any] = {}
        while time.time() - began < 300:
            progress = requests.get(progress_url, headers=headers, timeout=10).json()
            if progress["status"] in ("done", "failed"):
                break
            time.sleep(0.05)
        stored = time.time() - began
        stats = swarm.wait_received(opened["open"], idle_seconds=10, max_seconds=300)
        reached = (stats["last_at"] / 1000 - began) if stats["last_at"] else None
        return {
            "users": users,
            "connected": opened["open"],
            "post_ms": round(answered * 1000, 1),
            "stored_s": round(stored, 2),
            "status": progress.get("status"),
            "stored": progress.get("stored"),
            "pushed": progress.get("pushed"),
            "sockets_reached": stats["received"],
            "all_connected_reached_s": round(reached, 2) if reached else None,
        }
    finally:
        swarm.close()
        worker.close(grace=2)
        web.close(grace=2)
        env.close()


def main() -> None:
    """Measure each population in turn and print the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--connected", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-broadcast-") as tmp:
        for users in args.users:
            print(json.dumps(measure(users, args.connected, Path(tmp) / str(users))), flush=True)


if __name__ == "__main__":
    main()
