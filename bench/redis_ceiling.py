"""The limit every figure sits under: a raw Redis pub/sub round trip, in Node and in Python."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from bench.figures import config_file
from bench.procs import ROOT, Child, node_script
from bench.stats import summary

LIMIT_RATE = 1000


def redis_limit(redis_url: str, seconds: float, burst: int) -> dict[str, Any]:
    """Round trips at 1,000/s (open loop) and a burst through one subscriber, per client."""
    config = {"redisUrl": redis_url, "rate": LIMIT_RATE, "seconds": seconds, "burst": burst}
    out: dict[str, Any] = {"rate": LIMIT_RATE, "seconds": seconds}
    helpers = {
        "node-redis": node_script("redis_rtt.mjs"),
        "redis-py": [sys.executable, "-m", "bench.pylimit"],
    }
    for client, command in helpers.items():
        path = config_file(config)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result, cpu = Child([*command, path], env).result(timeout=seconds + 120)
        Path(path).unlink(missing_ok=True)
        out[client] = {
            "round_trip_ms": summary(result["samples"]),
            "burst": result["burst"],
            "burst_received": result["burst_received"],
            "messages_per_second": round(result["burst_rate"]),
            "cpu_seconds": round(cpu, 2),
        }
    return out
