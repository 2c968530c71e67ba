"""CPU per notification-creating API call, measured in one process without the server around it.

    python -m bench.write_path --calls 2000 [--profile] [--deliver]

Creates the benchmark's scratch database and Redis (bench/stack.py), builds the web app in this
process and drives `POST /api/campaigns` and `POST /api/campaigns/<id>/accept` through Flask's
test client, reading this process's CPU time (`time.process_time`) around the calls: the cost of
the application's own path (routing, auth, validation, SQL, the coalesced publish), without
gunicorn's HTTP parsing and the green hub, which B4 measures as a whole. `--profile` adds the
functions where that CPU goes (cProfile, by cumulative and own time). `--deliver` then runs
each live delivery those calls created as the realtime worker's task body does, one delivery per
batch (as at B4's rates), and measures that the same way
(the profile, if asked, is then the deliveries'): the claim, the emit through Redis, the record.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import os
import pstats
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.stack import SENDGRID_KEY, Environment
from tests.support.fake_sendgrid import FakeSendGrid


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.write_path", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="print where the CPU goes")
    parser.add_argument("--deliver", action="store_true", help="also the live deliveries' CPU")
    return parser.parse_args()


Call = tuple[str, dict[str, str], dict[str, Any] | None]


def measure(client: Any, calls: list[Call]) -> tuple[list[float], list[dict[str, Any]]]:
    """POST each call in order: CPU milliseconds of each and the answers (all must succeed)."""
    costs, answers = [], []
    for url, headers, body in calls:
        started = time.process_time()
        response = client.post(url, headers=headers, json=body)
        costs.append((time.process_time() - started) * 1000)
        assert response.status_code in (200, 201), (url, response.status_code, response.text)
        answers.append(response.json)
    return costs, answers


def deliver_each(channel: str, delivery_ids: list[str]) -> list[float]:
    """Run each delivery as a worker's task does: CPU milliseconds of each (all threads)."""
    from worker import delivery

    costs = []
    for delivery_id in delivery_ids:
        started = time.process_time()
        result = delivery.deliver(channel, [delivery_id])
        costs.append((time.process_time() - started) * 1000)
        assert result.counts().get("sent") == 1, result.counts()
    return costs


def pending(channel: str) -> list[str]:
    """The channel's deliveries not yet sent, oldest first."""
    from sqlalchemy import select

    from core.db import session_scope
    from core.models import Delivery

    with session_scope() as session:
        query = (
            select(Delivery.id)
            .where(Delivery.channel == channel, Delivery.status == "pending")
            .order_by(Delivery.created_at)
        )
        return list(session.scalars(query))


def _serve_sendgrid(urls: Any) -> None:
    """The stand-in's process: serve until terminated."""
    stand_in = FakeSendGrid(api_key=SENDGRID_KEY, latency=0.0).start()
    urls.put(stand_in.url)
    threading.Event().wait()


def sendgrid_process() -> tuple[multiprocessing.Process, str]:
    """A SendGrid stand-in in a process of its own, so its CPU is not counted as the worker's."""
    urls: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve_sendgrid, args=(urls,), daemon=True)
    process.start()
    return process, urls.get(timeout=10)


def summary(costs: list[float]) -> dict[str, float]:
    """Mean, median and p90 of per-call CPU milliseconds."""
    ordered = sorted(costs)
    return {
        "calls": len(costs),
        "mean_ms": round(statistics.fmean(costs), 3),
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)], 3),
    }


def _count_round_trips() -> Counter[str]:
    """Count what this process sends to the database: statements by verb, BEGINs, COMMITs."""
    from core.db import get_engine

    counts: Counter[str] = Counter()
    engine = get_engine()

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counts[statement.lstrip().split(None, 1)[0].upper()] += 1

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        # psycopg2 sends BEGIN before a transaction's first statement and COMMIT at its end,
        # unless the driver is in autocommit (core/db.py's _driver_autocommit).
        if not conn.connection.driver_connection.autocommit:
            counts["BEGIN"] += 1
            counts["COMMIT"] += 1

    return counts


def _per_call(counts: Counter[str], calls: int) -> dict[str, float]:
    """The counts divided by the number of calls, and their total."""
    out = {key: round(value / calls, 2) for key, value in sorted(counts.items())}
    out["total"] = round(sum(counts.values()) / calls, 2)
    return out


def main() -> None:
    """Measure, print a JSON-like summary, and optionally the profile."""
    args = parse()
    workdir = Path(tempfile.mkdtemp(prefix="bench-write-"))
    env = Environment(workdir)
    population = env.start(owners=200, channels=200, advertisers=50)
    sendgrid, sendgrid_url = sendgrid_process()
    try:
        os.environ.update(env.app_env("threading"))
        os.environ.update(SENDGRID_API_KEY=SENDGRID_KEY, SENDGRID_API_HOST=sendgrid_url)
        os.environ["LOG_LEVEL"] = "WARNING"
        from core.settings import get_settings
        from web import create_app

        get_settings.cache_clear()
        client = create_app().test_client()
        statements = _count_round_trips()

        def bearer(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        def creates(n: int, offset: int) -> list[Call]:
            # Channel i belongs to owner i (bench/stack.py), so accepting needs no lookup.
            return [
                ("/api/campaigns", bearer(population.advertiser_tokens[i % 50]),
                 {"channel_id": population.channels[i % 200], "title": f"Bench {i}",
                  "content": "Bench placement"})
                for i in range(offset, offset + n)
            ]  # fmt: skip

        measure(client, creates(200, 0))  # warm-up: imports, caches, the pool
        # Timed by CPU, as the figure is: waits on PostgreSQL and on threads would hide the cost.
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        if profiler and not args.deliver:
            profiler.enable()
        statements.clear()
        create_costs, created = measure(client, creates(args.calls, 200))
        if profiler and not args.deliver:
            profiler.disable()
        create_trips = _per_call(statements, args.calls)
        owner_token = dict(zip(population.channels, population.owner_tokens, strict=True))
        accepts: list[Call] = [
            (f"/api/campaigns/{c['id']}/accept", bearer(owner_token[c["channel_id"]]), None)
            for c in created
        ]
        statements.clear()
        accept_costs, _ = measure(client, accepts)
        accept_trips = _per_call(statements, len(accepts))
        print({"create": {**summary(create_costs), "round_trips": create_trips},
               "accept": {**summary(accept_costs), "round_trips": accept_trips}})  # fmt: skip
        for channel in ("inbox", "email") if args.deliver else ():
            waiting = pending(channel)
            deliver_each(channel, waiting[:200])  # warm-up, as the calls had
            statements.clear()
            if profiler:
                profiler.enable()
            costs = deliver_each(channel, waiting[200:])
            if profiler:
                profiler.disable()
            trips = _per_call(statements, len(waiting) - 200)
            print({f"deliver_{channel}": {**summary(costs), "round_trips": trips}})
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
            print(out.getvalue())
    finally:
        from core import metrics

        metrics.flush()  # the app's counts, while Redis still runs
        sendgrid.terminate()
        env.close()


if __name__ == "__main__":
    main()
