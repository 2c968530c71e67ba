"""The load generator: several Node processes of socket.io-client sockets, driven as one."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from typing import Any

from bench.procs import ROOT, node_script


class Swarm:
    """Node swarm processes (bench/node/swarm.mjs); client i lives in process i % n."""

    def __init__(self, processes: int) -> None:
        self.procs = [
            subprocess.Popen(
                node_script("swarm.mjs"),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            for _ in range(processes)
        ]

    def pids(self) -> list[int]:
        """The swarm's process ids, for the CPU meter."""
        return [p.pid for p in self.procs]

    def _all(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send one command to each process, then read every answer."""
        for proc, command in zip(self.procs, commands, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(command) + "\n")
            proc.stdin.flush()
        answers = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"swarm process {proc.pid} exited")
            answer = json.loads(line)
            if not answer.get("ok"):
                raise RuntimeError(f"swarm process {proc.pid}: {answer.get('error')}")
            answers.append(answer)
        return answers

    def broadcast(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        """Send the same command to every process."""
        return self._all([command] * len(self.procs))

    def connect(self, url: str, tokens: list[str], start: int = 0) -> dict[str, Any]:
        """Open sockets start..len(tokens)-1, token i for client i, spread over the processes."""
        n = len(self.procs)
        per_proc: list[list[list[Any]]] = [[] for _ in range(n)]
        for i in range(start, len(tokens)):
            per_proc[i % n].append([i, tokens[i]])
        started = time.monotonic()
        answers = self._all(
            [{"cmd": "connect", "url": url, "clients": c, "concurrency": 16} for c in per_proc]
        )
        errors = _merged(answers, "errors")
        return {
            "open": sum(a["open"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "errors": errors,
            "seconds": round(time.monotonic() - started, 2),
        }

    def keep_below(self, count: int) -> int:
        """Close every socket whose index is `count` or more; the number left open."""
        return sum(a["open"] for a in self.broadcast({"cmd": "keep_below", "n": count}))

    def reset(self, sample: bool = False) -> None:
        """Zero the receive counters (and keep latency samples from now on if `sample`)."""
        self.broadcast({"cmd": "reset", "sample": sample})

    def stats(self, samples: bool = False) -> dict[str, Any]:
        """Received count, first and last receipt (epoch ms), open sockets, drops, samples."""
        answers = self.broadcast({"cmd": "stats", "samples": samples})
        firsts = [a["first_at"] for a in answers if a["first_at"]]
        lasts = [a["last_at"] for a in answers if a["last_at"]]
        reasons = _merged(answers, "drop_reasons")
        return {
            "received": sum(a["received"] for a in answers),
            "first_at": min(firsts) if firsts else None,
            "last_at": max(lasts) if lasts else None,
            "open": sum(a["open"] for a in answers),
            "drops": sum(a["drops"] for a in answers),
            "drop_reasons": reasons,
            "samples": [s for a in answers for s in a.get("samples", [])],
        }

    def wait_received(
        self, expected: int, idle_seconds: float = 5, max_seconds: float = 120
    ) -> dict[str, Any]:
        """Poll until `expected` messages arrived, or none arrived for `idle_seconds`."""
        started = time.monotonic()
        last_count, last_change = -1, time.monotonic()
        while True:
            stats = self.stats()
            if stats["received"] >= expected:
                return stats
            if stats["received"] != last_count:
                last_count, last_change = stats["received"], time.monotonic()
            now = time.monotonic()
            if now - last_change > idle_seconds or now - started > max_seconds:
                return stats
            time.sleep(0.1)

    def close(self) -> None:
        """Stop every swarm process."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    assert proc.stdin is not None
                    proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                    proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    pass
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _merged(answers: list[dict[str, Any]], key: str) -> dict[str, int]:
    """The helpers' counts under `key` (reason -> count), summed across helper processes."""
    total: Counter[str] = Counter()
    for answer in answers:
        total.update(answer[key])
    return dict(total)
