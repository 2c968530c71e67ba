"""Live latency with emails flowing: one worker on every queue, then the Procfile's layout.

    python -m bench.live_latency [--rates 25 50 100] [--seconds 20] [--owners 2000]

Each layout runs the web process on PostgreSQL with every email of the lifecycle going to the
SendGrid stand-in (50 ms answers); the Node driver posts campaigns open loop, each call on its
own connection, and the owners listen with socket.io-client. Prints one JSON line per layout
and rate: the live latency (call to the owner's socket) and the API's answer time, in ms, per
status (past capacity, 503 `overloaded` answers show how fast the excess is refused).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.figures import Runner
from bench.profiles import FULL
from bench.stack import SINGLE_WORKER, AppTarget, Environment, procfile_workers
from bench.swarm import Swarm


def main() -> None:
    """Measure each worker layout at each rate."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[25, 50, 100])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--owners", type=int, default=2000)
    parser.add_argument("--layouts", nargs="+", default=["single", "procfile"])
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE settings to try")
    args = parser.parse_args()
    layouts = {"single": SINGLE_WORKER, "procfile": procfile_workers()}
    profile = replace(FULL, b4_clients=args.owners)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        env = Environment(Path(tmp))
        population = env.start(owners=args.owners, channels=args.owners)
        try:
            for layout in args.layouts:
                extra = dict(pair.split("=", 1) for pair in args.env)
                target = AppTarget(env, "eventlet", workers=layouts[layout], extra_env=extra)
                swarm = Swarm(2)
                target.start()
                try:
                    swarm.connect(target.url, population.owner_tokens)
                    runner = Runner(target, env, population, swarm, profile)
                    for rate in args.rates:
                        run = runner.b4_run(rate, args.seconds)
                        emails = len(target.sendgrid.accepted) if target.sendgrid else 0
                        row = {
                            "layout": layout,
                            "workers": layouts[layout],
                            "env": extra,
                            "rate": rate,
                            "sent": run["sent"],
                            "accepted": run["accepted"],
                            "received_live": run["received"],
                            "errors": run["errors"],
                            "live_ms": run["latency_ms"],
                            "api_ms": run["response_ms"],
                            "api_ms_by_status": run["response_ms_by_status"],
                            "emails_sent_so_far": emails,
                            "cpu": run["cpu"],
                        }
                        print(json.dumps(row), flush=True)
                finally:
                    swarm.close()
                    target.stop()
        finally:
            env.close()


if __name__ == "__main__":
    main()
