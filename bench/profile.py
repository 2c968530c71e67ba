"""Profile the platform under one benchmark load with py-spy (in requirements-dev.txt).

    python -m bench.profile --mode eventlet --load b4 --rate 200 --seconds 10
    python -m bench.profile --mode gevent --load b3 --clients 2000
    python -m bench.profile --load b4 --rate 150 --seconds 20 --perf

Starts the app in one async mode, connects the swarm, applies the load while py-spy samples
the web process and every Celery process, and writes their top functions (by own and total
time) and raw `--format raw` stacks under var/bench/profile-*/. Under B4 it also prints where a
live notification's time goes, stage by stage (bench/anatomy.py).

py-spy reads Python stacks by wall clock: a process that holds the GIL while the kernel runs
another one (a `send` on loopback wakes its reader, which may take the core) counts that time
against the line it stopped on, so system calls that wake another process look far dearer than
they are (under B4, py-spy put 8.7% of the web process's samples in libpq's `send`; perf
measured 2.8% of its CPU in every TCP send together). `--perf` samples CPU instead, with Linux
perf (`make perf` installs Debian's linux-perf): no Python functions, but the true split
between the interpreter, C extensions and the kernel, and the kernel's own functions.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.anatomy import report as anatomy
from bench.figures import Runner
from bench.procs import ROOT, tree
from bench.profiles import FULL, Profile
from bench.stack import AppTarget, Environment
from bench.swarm import Swarm


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--mode", default="eventlet", choices=("eventlet", "gevent"))
    parser.add_argument("--load", default="b4", choices=("b1", "b2", "b3", "b4"))
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--gil", action="store_true", help="sample only threads holding the GIL (CPU, not waits)"
    )
    parser.add_argument(
        "--no-spy", action="store_true", help="only the CPU per process, without py-spy's own cost"
    )
    parser.add_argument(
        "--perf", action="store_true", help="sample CPU with Linux perf instead of py-spy"
    )
    return parser.parse_args()


def spy(pid: int, seconds: float, path: Path, gil: bool = False) -> subprocess.Popen[bytes]:
    """Start py-spy recording one process for `seconds` into a raw (collapsed) stack file."""
    py_spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds) + 1),
         "--rate", "200", "--function", "--format", "raw", "--output", str(path), "--nonblocking",
         *(["--gil"] if gil else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def perf_record(pid: int, seconds: float, path: Path) -> subprocess.Popen[bytes]:
    """Start Linux perf sampling one process's CPU (with call chains) for `seconds`."""
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("--perf needs Linux perf: `make perf` installs Debian's linux-perf")
    return subprocess.Popen(
        [perf, "record", "--quiet", "-F", "499", "-g", "-p", str(pid), "-o", str(path),
         "--", "sleep", str(int(seconds) + 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def perf_summary(path: Path, count: int = 12) -> str:
    """Where one process's CPU went: by binary (interpreter, extension, kernel), then symbol."""
    lines = [f"{path.name}:"]
    for key, title in (("dso", "by binary"), ("sym", "by function (own)")):
        report = subprocess.run(
            ["perf", "report", "-i", str(path), "--no-children", "--sort", key, "-g", "none",
             "--stdio"],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        rows = [r.strip() for r in report.splitlines() if r.strip() and not r.startswith("#")]
        lines.append(f"  {title}:")
        lines.extend(f"    {row}" for row in rows[:count])
    return "\n".join(lines)


def top(path: Path, count: int = 25) -> str:
    """The functions with the most samples, by own time and by total time."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        weight = int(n)
        samples += weight
        own[frames[-1]] = own.get(frames[-1], 0) + weight
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + weight
    lines = [f"{path.name}: {samples} samples", "  own time:"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:count]:
        lines.append(f"    {100 * n / samples:5.1f}%  {frame}")
    lines.append("  total time:")
    for frame, n in sorted(total.items(), key=lambda kv: -kv[1])[:count]:
        lines.append(f"    {100 * n / samples:5.1f}%  {frame}")
    return "\n".join(lines)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds each named process has used so far."""
    used = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            used[name] = times.user + times.system
    return used


def cpu_table(before: dict[str, float], after: dict[str, float], calls: int | None) -> str:
    """CPU per process over the load: cores, and milliseconds per call when calls were made."""
    lines = ["CPU per process during the load:"]
    for name in sorted(after, key=lambda n: -(after[n] - before.get(n, 0.0))):
        seconds = after[name] - before.get(name, 0.0)
        per_call = f"  {1000 * seconds / calls:6.2f} ms per call" if calls else ""
        lines.append(f"  {name:28} {seconds:7.2f} s{per_call}")
    return "\n".join(lines)


def main() -> int:
    """Run the load once under py-spy and print the top functions."""
    args = parse()
    workdir = ROOT / "var" / "bench" / f"profile-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    workdir.mkdir(parents=True, exist_ok=True)
    profile = Profile(
        **{
            **FULL.__dict__,
            "b1_clients": args.clients,
            "b3_clients": args.clients,
            "b4_clients": args.clients,
            "b3_half_seconds": args.seconds,
            "b2_messages": {args.clients: 20},
            "reps": 1,
        }
    )
    env = Environment(workdir)
    swarm = Swarm(2)
    target = AppTarget(env, args.mode)
    try:
        population = env.start(owners=args.clients, channels=args.clients)
        target.start()
        if args.load != "b1":
            swarm.connect(target.url, population.owner_tokens[: args.clients])
        runner = Runner(target, env, population, swarm, profile)
        pids = {"web": target.socket_pid()}
        for worker in target.workers:
            for i, pid in enumerate(tree(worker.pid or 0)):
                pids[f"{worker.name}{i}"] = pid
        spies = {
            name: perf_record(pid, args.seconds, workdir / f"{name}.perf.data")
            if args.perf
            else spy(pid, args.seconds, workdir / f"{name}.txt", args.gil)
            for name, pid in pids.items()
            if not args.no_spy
        }
        time.sleep(1)
        before = cpu_seconds(pids)
        calls = None
        if args.load == "b4":
            result = runner.b4_run(args.rate, args.seconds)
            calls = result["accepted"]
            print(result)
            print(anatomy(env.log_dir))
        elif args.load == "b3":
            print(runner.b3())
        elif args.load == "b2":
            print(runner.b2(args.clients))
        else:
            print(runner.b1())
        print(cpu_table(before, cpu_seconds(pids), calls))
        for proc in spies.values():
            proc.wait(60)
        for name in spies:
            path = workdir / (f"{name}.perf.data" if args.perf else f"{name}.txt")
            if path.exists():
                print(perf_summary(path) if args.perf else top(path))
    finally:
        swarm.close()
        target.stop()
        env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
