"""Child processes of the benchmark: one-shot helpers with their CPU time, and CPU meters."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"


def node_script(name: str) -> list[str]:
    """The command that runs one of bench/node's scripts."""
    return ["node", str(NODE_DIR / name)]


class Child:
    """A one-shot helper started now, whose JSON result and CPU seconds are read at the end."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in result()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )

    def ready(self, timeout: float = 60) -> None:
        """Wait for the helper's "ready" line (connected, warmed up, waiting for go)."""
        assert self.process.stdout is not None
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        try:
            line = self.process.stdout.readline()
        finally:
            timer.cancel()
        if line.strip() != "ready":
            self.errors.seek(0)
            raise RuntimeError(f"{self.process.args} not ready:\n{self.errors.read()[-3000:]}")
        # Start-up (imports, JIT, connecting) is not part of the measured window.
        self.cpu_at_ready = _cpu_seconds([self.process.pid])

    def go(self, start_at: float) -> None:
        """Tell the helper the epoch ms its schedule starts from."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{start_at}\n")
        self.process.stdin.close()

    def result(self, timeout: float = 300) -> tuple[dict[str, Any], float]:
        """Wait for the helper: its last stdout line as JSON, and the CPU seconds it used."""
        assert self.process.stdout is not None
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        try:
            out = self.process.stdout.read()
            _, status, usage = os.wait4(self.process.pid, 0)
        finally:
            timer.cancel()
        self.process.returncode = os.waitstatus_to_exitcode(status)
        lines = out.strip().splitlines()
        if self.process.returncode != 0 or not lines:
            self.errors.seek(0)
            raise RuntimeError(f"{self.process.args} failed:\n{self.errors.read()[-3000:]}")
        self.errors.close()
        used = usage.ru_utime + usage.ru_stime - getattr(self, "cpu_at_ready", 0.0)
        return json.loads(lines[-1]), used


def rss_bytes(pid: int) -> int:
    """Resident memory of one process."""
    return int(psutil.Process(pid).memory_info().rss)


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    try:
        parent = psutil.Process(pid)
        return [pid, *(p.pid for p in parent.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on the machine (other users' backends included)."""
    pids = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] and proc.info["name"].startswith("postgres"):
            pids.append(proc.pid)
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    """User + system seconds the live processes have used so far."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


class CpuMeter:
    """CPU used per role (web process, worker, swarm, Redis…) over one measured window."""

    def __init__(self, roles: Callable[[], dict[str, list[int]]]) -> None:
        self.roles = roles

    def __enter__(self) -> CpuMeter:
        """Start the window."""
        self.pids = self.roles()
        self.start = {role: _cpu_seconds(pids) for role, pids in self.pids.items()}
        self.started = time.monotonic()
        self.extra: dict[str, float] = {}
        return self

    def restart(self) -> None:
        """Start the window again from now (helpers were starting up until now)."""
        self.start = {role: _cpu_seconds(pids) for role, pids in self.pids.items()}
        self.started = time.monotonic()

    def add(self, role: str, seconds: float) -> None:
        """Count a finished helper's CPU seconds under a role."""
        self.extra[role] = self.extra.get(role, 0.0) + seconds

    def __exit__(self, *_: object) -> None:
        """Close the window: cores used per role = CPU seconds / wall seconds."""
        wall = max(time.monotonic() - self.started, 1e-6)
        used = {role: _cpu_seconds(pids) - self.start[role] for role, pids in self.pids.items()}
        for role, seconds in self.extra.items():
            used[role] = used.get(role, 0.0) + seconds
        self.cores = {role: round(seconds / wall, 2) for role, seconds in used.items()}
        self.wall = wall
