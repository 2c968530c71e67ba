"""Memory over connect/disconnect cycles: the web worker's RSS and tracked objects per cycle.

    python -m bench.socket_churn [--mode eventlet] [--clients 2000] [--cycles 10] [--emits 2000]

Each cycle connects `clients` sockets, sends `emits` targeted notifications through the
workers' emitter (the path that allocates per emit), disconnects every socket, waits for the
departures, then reads the worker's RSS and its collector's state (bench/gc_probe.py) without
forcing a collection. After the last cycle the worker runs a full collection: what it frees
was garbage waiting for a full pass, what is left above the start is kept for good.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

from bench.figures import Runner
from bench.procs import ROOT, rss_bytes
from bench.profiles import FULL
from bench.stack import AppTarget, Environment
from bench.swarm import Swarm
from tests.support.net import free_port
from tests.support.processes import start_web

# The project's gunicorn.conf.py, plus the probe in the worker (bench only, never the app).
PROBE_CONFIG = """
import runpy
globals().update(runpy.run_path({config!r}))
_post_worker_init = post_worker_init


def post_worker_init(worker):
    _post_worker_init(worker)
    from bench.gc_probe import install

    install()
"""


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.socket_churn", description=__doc__)
    parser.add_argument("--mode", default="eventlet", choices=("eventlet", "gevent"))
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--emits", type=int, default=None, help="per cycle (default: clients)")
    parser.add_argument("--rate", type=float, default=1000, help="emits per second")
    # engine.io's ping task of a closed socket sleeps out its 25 s before it lets the socket go.
    parser.add_argument("--settle", type=float, default=30, help="seconds after disconnecting")
    return parser.parse_args()


class ProbedWeb(AppTarget):
    """The web process alone (no Celery: the feeder emits as a worker would), with the probe."""

    def start(self) -> None:
        """Start gunicorn from a directory whose gunicorn.conf.py adds the probe."""
        self.env.flush_redis()
        here = self.env.workdir / "probed"
        here.mkdir(parents=True, exist_ok=True)
        (here / "gunicorn.conf.py").write_text(
            PROBE_CONFIG.format(config=str(ROOT / "gunicorn.conf.py"))
        )
        self.probe_file = here / "gc-probe.json"
        app_env = {
            **self.env.app_env(self.mode),
            "GC_PROBE_FILE": str(self.probe_file),
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        port = free_port()
        self.web = start_web(app_env, port, self.env.log_dir, name=f"web-{self.mode}", cwd=here)
        self.url = f"http://127.0.0.1:{port}"

    def roles(self) -> dict[str, list[int]]:
        """The web process and Redis, for the CPU meter."""
        return {"web": [self.socket_pid()], "redis": self.env.redis_pids()}

    def probe(self, what: str = "count") -> dict[str, Any]:
        """The worker's collector state: bench/gc_probe.py's "count", "collect" or "passes"."""
        request = self.probe_file.with_name(self.probe_file.name + ".request")
        request.write_text(what)
        before = self.probe_file.stat().st_mtime_ns if self.probe_file.exists() else 0
        os.kill(self.socket_pid(), signal.SIGUSR2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.probe_file.exists() and self.probe_file.stat().st_mtime_ns != before:
                return json.loads(self.probe_file.read_text())
            time.sleep(0.1)
        raise RuntimeError("the web worker did not answer the probe")


def row(label: str, open_rss: float | None, web: ProbedWeb, probe: dict[str, Any]) -> dict:
    """One line of the table: memory and objects once the sockets are gone."""
    state = probe["before"]
    return {
        "cycle": label,
        "rss_open_mb": open_rss,
        "rss_closed_mb": round(rss_bytes(web.socket_pid()) / 2**20, 1),
        "tracked": state["tracked"],
        "passes": state["collections"],
        "by_type": state["by_type"],
    }


def main() -> int:
    """Run the cycles and print the table."""
    args = parse()
    emits = args.clients if args.emits is None else args.emits
    workdir = ROOT / "var" / "bench" / f"churn-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    env = Environment(workdir)
    swarm = Swarm(2)
    web = ProbedWeb(env, args.mode, workers={})
    rows: list[dict[str, Any]] = []
    try:
        population = env.start(owners=args.clients, channels=1)
        tokens = population.owner_tokens[: args.clients]
        web.start()
        runner = Runner(web, env, population, swarm, FULL)
        # Warm-up: the first connections load code and fill caches that are not per socket.
        swarm.connect(web.url, tokens[:20])
        swarm.keep_below(0)
        time.sleep(args.settle)
        rows.append(row("start", None, web, web.probe()))
        for cycle in range(1, args.cycles + 1):
            opened = swarm.connect(web.url, tokens)["open"]
            if emits:
                swarm.reset()
                with runner.meter() as cpu:
                    runner.feed(cpu, "targeted", emits, rate=args.rate, users=population.owners)
                    received = swarm.wait_received(emits, idle_seconds=5)["received"]
            else:
                received = 0
            open_rss = round(rss_bytes(web.socket_pid()) / 2**20, 1)
            swarm.keep_below(0)
            time.sleep(args.settle)
            rows.append(row(str(cycle), open_rss, web, web.probe()))
            rows[-1] |= {"opened": opened, "received": received}
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "by_type"}), flush=True)
        final = web.probe("collect")
    finally:
        swarm.close()
        web.stop()
        env.close()
    out = {
        "args": vars(args),
        "rows": rows,
        "final_collect": {k: final[k] for k in ("freed", "collect_ms")},
        "after_collect": final["after"],
    }
    (workdir / "churn.json").write_text(json.dumps(out, indent=1))
    print(markdown(rows, final))
    print(f"JSON: {workdir / 'churn.json'}")
    return 0


def markdown(rows: list[dict[str, Any]], final: dict[str, Any]) -> str:
    """The table for docs/BENCHMARKS.md."""
    lines = [
        "| cycle | RSS, sockets open (MB) | RSS, closed (MB) | tracked objects, closed | "
        "passes so far (gen 0 / 1 / 2) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        passes = " / ".join(str(p) for p in r["passes"])
        opened = "" if r["rss_open_mb"] is None else f"{r['rss_open_mb']}"
        lines.append(
            f"| {r['cycle']} | {opened} | {r['rss_closed_mb']} | {r['tracked']:,} | {passes} |"
        )
    after = final["after"]
    lines.append(
        f"\nThen a full collection ({final['collect_ms']} ms) freed {final['freed']:,} objects: "
        f"{after['tracked']:,} tracked objects left (frozen at start-up: {after['frozen']:,})."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
