"""The web worker's collector passes during B3, timed one by one, with B3's latencies beside them.

    python -m bench.gc_pauses [--mode eventlet] [--clients 2000] [--runs 3]

Connects `clients` sockets to one web process (no Celery: the feeders emit as workers do),
runs B3 `runs` times, and after each reads every collector pass the worker made meanwhile
(bench/gc_probe.py, a `gc.callbacks` hook of the benchmark's own, so older code is measured the
same way). Prints one line per run: B3's figures, then per generation the passes' count,
median and longest duration, and the share of the run's wall time spent in them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from bench.figures import Runner
from bench.procs import ROOT
from bench.profiles import FULL
from bench.socket_churn import ProbedWeb
from bench.stack import Environment
from bench.swarm import Swarm


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.gc_pauses", description=__doc__)
    parser.add_argument("--mode", default="eventlet", choices=("eventlet", "gevent"))
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args()


def passes_summary(passes: dict[str, list[float]], wall: float) -> dict[str, Any]:
    """Count, median, longest (ms) and share of the wall time, per generation."""
    out = {}
    for generation, durations in sorted(passes.items()):
        if durations:
            out[generation] = {
                "n": len(durations),
                "p50_ms": round(statistics.median(durations), 2),
                "max_ms": round(max(durations), 1),
                "share": round(sum(durations) / 1000 / wall, 4),
            }
    return out


def main() -> int:
    """Run B3 several times on one server and print the collector's passes of each run."""
    args = parse()
    workdir = ROOT / "var" / "bench" / f"gc-pauses-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    env = Environment(workdir)
    swarm = Swarm(FULL.swarm_procs)
    web = ProbedWeb(env, args.mode, workers={})
    runs: list[dict[str, Any]] = []
    try:
        population = env.start(owners=args.clients, channels=1)
        web.start()
        swarm.connect(web.url, population.owner_tokens[: args.clients])
        runner = Runner(web, env, population, swarm, FULL)
        for _ in range(args.runs):
            web.probe("passes")  # start counting now
            started = time.monotonic()
            b3 = runner.b3()
            wall = time.monotonic() - started
            passes = web.probe("passes")["passes_ms"]
            run = {
                "saturation_per_second": b3["saturation_per_second"],
                "half_rate": b3["half_rate"],
                "half_latency_ms": b3["half_latency_ms"],
                "wall_seconds": round(wall, 1),
                "passes": passes_summary(passes, wall),
                "passes_ms": passes,
            }
            runs.append(run)
            print(json.dumps({k: v for k, v in run.items() if k != "passes_ms"}), flush=True)
    finally:
        swarm.close()
        web.stop()
        env.close()
    (workdir / "gc-pauses.json").write_text(json.dumps({"args": vars(args), "runs": runs}))
    print(f"JSON: {workdir / 'gc-pauses.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
