"""`python -m bench [--quick]`: every figure, peer and async modes interleaved, then the report."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.email_b5 import run_b5
from bench.figures import Runner
from bench.procs import ROOT
from bench.profiles import PROFILES, Profile
from bench.redis_ceiling import redis_limit
from bench.stack import PEER, AppTarget, Environment, PeerTarget, Target, node_available
from bench.swarm import Swarm

MODES = ("eventlet", "gevent")
# Past this, a full run stops adding retries of B4's sustained minute.
RETRY_BUDGET_SECONDS = 20 * 60


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one rep (< 1 min)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; quick 1)")
    parser.add_argument(
        "--targets",
        default=f"{PEER},{','.join(MODES)}",
        help="peer, eventlet, gevent; eventlet-x2: two web processes behind nginx",
    )
    parser.add_argument("--figures", default="b1,b2,b3,b4,b5", help="subset, e.g. b1,b2")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON path (default var/bench/last.json; docs/benchmarks.json with --docs)",
    )
    parser.add_argument("--docs", action="store_true", help="also rewrite docs/BENCHMARKS.md")
    parser.add_argument("--wait-quiet", type=float, default=0, help="minutes to wait for load<0.7")
    # The app's processes get a clean environment, not this shell's: settings to try go here.
    parser.add_argument(
        "--app-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the app's processes (repeatable), e.g. WEB_GC_YOUNG_PASS_SECONDS=0",
    )
    return parser.parse_args(argv)


def wait_for_quiet(minutes: float) -> list[float]:
    """Wait (re-checking every minute) until the 1-minute load is below 0.7; the last reading."""
    deadline = time.monotonic() + minutes * 60
    while True:
        load = list(os.getloadavg())
        if load[0] < 0.7 or time.monotonic() >= deadline:
            return load
        print(f"load {load[0]:.2f} ≥ 0.7; waiting a minute", flush=True)
        time.sleep(60)


def ensure_node_modules() -> None:
    """Install bench/'s npm packages from the lock file when they are missing."""
    if node_available():
        return
    if shutil.which("npm") is None:
        raise SystemExit("node and npm are needed for the peer and the load generator")
    subprocess.run(
        ["npm", "ci", "--prefix", "bench", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=ROOT,
        check=True,
    )


def measure_target(
    runner: Runner, profile: Profile, figures: set[str], sustain: dict[str, float], rep: int
) -> dict[str, Any]:
    """Every figure of one target: B1 on a server of its own, then the rest on a fresh one."""
    # The second server only ever gains sockets (smallest swarm first), so no figure measures
    # the aftermath of thousands of departures (see web/room_index.py) instead of itself.
    out: dict[str, Any] = {}
    target, swarm = runner.target, runner.swarm
    if "b1" in figures and profile.b1_own_server:
        started = time.monotonic()
        target.start()
        try:
            out["b1"] = runner.b1()
        finally:
            target.stop()
            swarm.keep_below(0)
        print(f"    b1: {time.monotonic() - started:.0f} s  {brief('b1', out)}", flush=True)
    steps: list[tuple[int, str]] = []
    if "b1" in figures and not profile.b1_own_server:
        steps.append((profile.b1_clients, "b1"))
    if "b2" in figures:
        steps += [(size, f"b2:{size}") for size in profile.b2_sizes]
    if "b3" in figures:
        steps.append((profile.b3_clients, "b3"))
    if "b4" in figures:
        steps.append((profile.b4_clients, "b4"))
    if not steps:
        return out
    target.start()
    try:
        for clients, step in sorted(steps, key=lambda s: s[0]):
            started = time.monotonic()
            already = swarm.stats()["open"]
            if step != "b1" and already < clients:
                swarm.connect(target.url, runner.population.owner_tokens[:clients], start=already)
            target.wait_idle()
            if step == "b1":
                out["b1"] = runner.b1()
            elif step.startswith("b2:"):
                out.setdefault("b2", {})[step[3:]] = runner.b2(int(step[3:]))
            elif step == "b3":
                out["b3"] = runner.b3()
            else:
                out["b4"] = b4(runner, profile, sustain, rep)
            print(f"    {step}: {time.monotonic() - started:.0f} s  {brief(step, out)}", flush=True)
    finally:
        target.stop()
        swarm.keep_below(0)
    return out


def b4(runner: Runner, profile: Profile, sustain: dict[str, float], rep: int) -> dict[str, Any]:
    """B4's base rate, then (first rep) the probe, then the sustained minute (one retry lower)."""
    name = runner.target.name
    # Warm-up, not measured: the web process's first API calls open its database connections
    # and fill its statement caches, a stall that shed the base run's first calls (503).
    runner.b4_run(profile.b4_rate / 4, 2)
    result: dict[str, Any] = {"base": runner.b4_run(profile.b4_rate, profile.b4_seconds)}
    if name not in sustain:
        sustain[name], result["probes"] = runner.b4_probe(result["base"])
    runs = []
    rate = sustain[name]
    while rate > 0:
        run = runner.b4_run(rate, profile.b4_sustain_seconds)
        runs.append(run)
        if run["passed"] or len(runs) == 3 or elapsed() > RETRY_BUDGET_SECONDS:
            break
        rate = float(round(rate * 0.75))
        sustain[name] = rate
    result["sustain_runs"] = runs
    passed = [r["rate"] for r in runs if r["passed"]]
    result["sustained_rate"] = max(passed) if passed else None
    return result


_STARTED = time.monotonic()


def elapsed() -> float:
    """Seconds since the measurements started."""
    return time.monotonic() - _STARTED


def restart_clock() -> None:
    """Start counting from now (after waiting for a quiet machine)."""
    global _STARTED
    _STARTED = time.monotonic()


def brief(step: str, out: dict[str, Any]) -> str:
    """One line of what a step measured, for the console."""
    if step == "b1":
        b = out["b1"]
        return f"held {b['held']}/{b['clients']}, {b['kb_per_connection']} KB/conn"
    if step.startswith("b2:"):
        b = out["b2"][step[3:]]
        return f"{b['deliveries_per_second']} deliveries/s ({b['received']}/{b['expected']})"
    if step == "b3":
        b = out["b3"]
        lat = b["half_latency_ms"]
        return (
            f"saturation {b['saturation_per_second']}/s; at half p50 {lat['p50']} p99 {lat['p99']}"
        )
    b = out["b4"]
    lat = b["base"]["latency_ms"]
    return (
        f"@{b['base']['rate']}/s p50 {lat['p50']} p99 {lat['p99']}; sustained {b['sustained_rate']}"
    )


def machine() -> dict[str, Any]:
    """What the figures ran on."""
    import platform

    import psutil

    def version(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "absent"

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = bool(version(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked=no"]))
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": version(["node", "--version"]),
        "redis": version(["redis-server", "--version"]).split(" ")[2:3],
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "open_files_limit": __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON (and, with --docs, docs/BENCHMARKS.md)."""
    args = parse(argv)
    profile = PROFILES["quick" if args.quick else "full"]
    reps = args.reps or profile.reps
    figures = set(args.figures.split(","))
    names = args.targets.split(",")
    out_path = args.out or (
        ROOT / "docs" / "benchmarks.json" if args.docs else ROOT / "var" / "bench" / "last.json"
    )
    ensure_node_modules()
    load_before = wait_for_quiet(args.wait_quiet) if args.wait_quiet else list(os.getloadavg())
    waited = elapsed()
    restart_clock()
    started_at = datetime.now(UTC)
    workdir = ROOT / "var" / "bench" / started_at.strftime("%Y%m%dT%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"bench ({profile.name}, {reps} rep(s)); logs in {workdir}", flush=True)
    data: dict[str, Any] = {
        "generated_at": started_at.isoformat(timespec="seconds"),
        "profile": profile.name,
        "reps": reps,
        "machine": machine(),
        "load_before": [round(x, 2) for x in load_before],
        "app_env": dict(item.split("=", 1) for item in args.app_env),
        "waited_for_quiet_seconds": round(waited),
        "runs": [],
    }
    env = Environment(workdir)
    clients = max(profile.b1_clients, profile.b3_clients, profile.b4_clients)
    swarm: Swarm | None = None
    try:
        population = env.start(owners=clients, channels=profile.b4_clients)
        data["database"] = env.database
        data["limits"] = redis_limit(env.redis.url, profile.limit_seconds, profile.limit_burst)
        print(f"  limit: {json.dumps(report.limit_brief(data['limits']))}", flush=True)
        swarm = Swarm(profile.swarm_procs)
        targets: dict[str, Target] = {
            n: PeerTarget(env) if n == PEER else AppTarget.named(env, n) for n in names
        }
        for target in targets.values():
            if isinstance(target, AppTarget):
                target.extra_env |= data["app_env"]
        sustain: dict[str, float] = {}
        realtime = figures & {"b1", "b2", "b3", "b4"}
        for rep in range(reps if realtime else 0):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                target = targets[name]
                print(f"  rep {rep + 1}/{reps} {name} ({elapsed():.0f} s)", flush=True)
                runner = Runner(target, env, population, swarm, profile)
                result = measure_target(runner, profile, realtime, sustain, rep)
                data["runs"].append({"rep": rep + 1, "target": name, **result})
                write(data, out_path)
        if "b5" in figures:
            data["b5"] = []
            redis_b5 = env.redis.url.rsplit("/", 1)[0] + "/1"
            for i in range(profile.b5_runs):
                print(f"  b5 run {i + 1}/{profile.b5_runs} ({elapsed():.0f} s)", flush=True)
                data["b5"].append(run_b5(profile.b5_emails, redis_b5))
                print(f"    {data['b5'][-1]['line']}", flush=True)
    finally:
        if swarm is not None:
            swarm.close()
        env.close()
    data["load_after"] = [round(x, 2) for x in os.getloadavg()]
    data["duration_seconds"] = round(elapsed())
    data["summary"] = report.summarize(data)
    write(data, out_path)
    markdown = report.markdown(data)
    if args.docs:
        report.update_benchmarks_md(ROOT / "docs" / "BENCHMARKS.md", markdown)
    else:
        out_path.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"done in {elapsed():.0f} s; JSON: {out_path}")
    return 0


def write(data: dict[str, Any], path: Path) -> None:
    """Save the raw figures (after every target, so a crash keeps what was measured)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
