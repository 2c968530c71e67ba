"""B1–B4 measured against one target (the peer or the platform in one async mode)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import ROOT, Child, CpuMeter, node_script, rss_bytes
from bench.profiles import Profile
from bench.stack import PEER, Environment, Population, Target
from bench.stats import summary
from bench.swarm import Swarm

# Latency budget of B4's sustained rate, and the stricter one its short probes must meet.
SUSTAIN_P99_MS = 1000.0
PROBE_P99_MS = 250.0


def config_file(config: dict[str, Any]) -> str:
    """Write a helper's configuration to a temporary JSON file (argv is too small for it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bench-", delete=False) as handle:
        json.dump(config, handle)
    return handle.name


def now_ms() -> float:
    """The wall clock in epoch milliseconds, the time base every helper shares."""
    return time.time() * 1000


class Runner:
    """Measures one target with the shared swarm; every method returns a JSON-ready dict."""

    def __init__(
        self,
        target: Target,
        env: Environment,
        population: Population,
        swarm: Swarm,
        profile: Profile,
    ) -> None:
        self.target = target
        self.env = env
        self.population = population
        self.swarm = swarm
        self.profile = profile

    # --- plumbing --------------------------------------------------------------------------

    def meter(self) -> CpuMeter:
        """A CPU meter over the target's processes, the swarm and Redis."""

        def roles() -> dict[str, list[int]]:
            return {**self.target.roles(), "swarm": self.swarm.pids()}

        return CpuMeter(roles)

    def feed(
        self,
        cpu: CpuMeter,
        mode: str,
        count: int,
        rate: float = 0,
        users: list[str] | None = None,
        processes: int = 1,
    ) -> dict[str, Any]:
        """Publish `count` messages through the target's own emitter; first send time, etc."""
        children = []
        paths = []
        for k in range(processes):
            share = count // processes + (1 if k < count % processes else 0)
            config: dict[str, Any] = {
                "mode": mode,
                "count": share,
                "rate": rate / processes,
                # Interleave the feeders' schedules so the sum is evenly spaced.
                "delay": k * 1000 / rate if rate else 0,
                "offset": k * (len(users or [1]) // processes),
            }
            if self.target.name == PEER:
                config |= {
                    "redisUrl": self.env.redis.url,
                    "rooms": [f"user:{u}" for u in users or []],
                }
                command = [*node_script("feeder.mjs")]
                child_env = None
            else:
                config["users"] = users or []
                command = [sys.executable, "-m", "bench.pyfeeder"]
                child_env = {
                    **os.environ,
                    **self.env.app_env(self.target.name),
                    "PYTHONPATH": str(ROOT),
                }
            paths.append(config_file(config))
            children.append(Child([*command, paths[-1]], child_env))
        for child in children:
            child.ready()
        start_at = now_ms() + 50
        cpu.restart()
        for child in children:
            child.go(start_at)
        results = []
        for child in children:
            result, seconds = child.result()
            cpu.add("feeder", seconds)
            results.append(result)
        for path in paths:
            Path(path).unlink(missing_ok=True)
        return {
            "sent": sum(r["sent"] for r in results),
            "first_at": min(r["first_at"] for r in results),
            "last_at": max(r["last_at"] for r in results),
            "max_lag_ms": round(max(r["max_lag_ms"] for r in results), 2),
        }

    def settle(self, count: int) -> int:
        """Keep sockets 0..count-1, and give the server a moment to process the departures."""
        open_sockets = self.swarm.keep_below(count)
        time.sleep(2 if self.profile.name == "full" else 0.5)
        return open_sockets

    # --- B1 --------------------------------------------------------------------------------

    def b1(self) -> dict[str, Any]:
        """Idle connections held by one process, and its memory per connection."""
        n = self.profile.b1_clients
        tokens = self.population.owner_tokens[:n]
        self.swarm.keep_below(0)
        # Warm-up: the first connections load code paths that are not per-connection memory.
        self.swarm.connect(self.target.url, tokens[:20])
        self.settle(0)
        pid = self.target.socket_pid()
        rss_before = rss_bytes(pid)
        with self.meter() as cpu:
            connected = self.swarm.connect(self.target.url, tokens)
        time.sleep(2 if self.profile.name == "full" else 0.5)
        rss_after = rss_bytes(pid)
        time.sleep(self.profile.b1_hold_seconds)
        server_count = self.target.connections()
        # Proof of life: one broadcast must reach every socket that is still open.
        self.swarm.reset()
        with self.meter() as check_cpu:
            self.feed(check_cpu, "broadcast", 1)
            stats = self.swarm.wait_received(connected["open"], idle_seconds=10)
        held = min(stats["received"], stats["open"])
        return {
            "clients": n,
            "connected": connected["open"],
            "failed": connected["failed"],
            "errors": connected["errors"],
            "connect_seconds": connected["seconds"],
            "connects_per_second": round(connected["open"] / connected["seconds"], 1),
            "connect_cpu": cpu.cores,
            "server_count": server_count,
            "held": held,
            "drops": stats["drops"],
            "rss_before_mb": round(rss_before / 2**20, 1),
            "rss_after_mb": round(rss_after / 2**20, 1),
            "kb_per_connection": round((rss_after - rss_before) / max(held, 1) / 1024, 1),
        }

    # --- B2 --------------------------------------------------------------------------------

    def b2(self, size: int) -> dict[str, Any]:
        """One broadcast message fanned out to `size` sockets, many times: deliveries/s."""
        messages = self.profile.b2_messages[size]
        open_sockets = self.settle(size)
        self.swarm.reset()
        expected = open_sockets * messages
        with self.meter() as cpu:
            sent = self.feed(cpu, "broadcast", messages)
            stats = self.swarm.wait_received(expected, idle_seconds=10)
        elapsed = (stats["last_at"] - sent["first_at"]) / 1000 if stats["last_at"] else None
        return {
            "clients": open_sockets,
            "messages": messages,
            "expected": expected,
            "received": stats["received"],
            "seconds": round(elapsed, 3) if elapsed else None,
            "deliveries_per_second": round(stats["received"] / elapsed) if elapsed else None,
            "cpu": cpu.cores,
        }

    # --- B3 --------------------------------------------------------------------------------

    def b3(self) -> dict[str, Any]:
        """Targeted emits from the worker side: saturation rate, then latency at half of it."""
        n = self.profile.b3_clients
        open_sockets = self.settle(n)
        users = self.population.owners[:n]
        burst = self.profile.b3_burst
        self.swarm.reset()
        with self.meter() as cpu:
            sent = self.feed(cpu, "targeted", burst, users=users, processes=2)
            stats = self.swarm.wait_received(burst, idle_seconds=10)
        elapsed = (stats["last_at"] - sent["first_at"]) / 1000 if stats["last_at"] else None
        saturation = stats["received"] / elapsed if elapsed else 0
        publish_rate = sent["sent"] / max((sent["last_at"] - sent["first_at"]) / 1000, 1e-3)
        half = max(1.0, saturation / 2)
        count = max(1, round(half * self.profile.b3_half_seconds))
        self.swarm.reset(sample=True)
        with self.meter() as half_cpu:
            half_sent = self.feed(half_cpu, "targeted", count, rate=half, users=users, processes=2)
            self.swarm.wait_received(count, idle_seconds=5)
        half_stats = self.swarm.stats(samples=True)
        return {
            "clients": open_sockets,
            "burst": burst,
            "burst_received": stats["received"],
            "burst_seconds": round(elapsed, 3) if elapsed else None,
            "feeder_publish_rate": round(publish_rate),
            "saturation_per_second": round(saturation),
            "saturation_cpu": cpu.cores,
            "half_rate": round(half),
            "half_sent": half_sent["sent"],
            "half_received": half_stats["received"],
            "half_feeder_max_lag_ms": half_sent["max_lag_ms"],
            "half_latency_ms": summary(half_stats["samples"]),
            "half_cpu": half_cpu.cores,
        }

    # --- B4 --------------------------------------------------------------------------------

    def b4_run(self, rate: float, seconds: float, budget_ms: float = SUSTAIN_P99_MS) -> dict:
        """API calls at `rate`/s for `seconds`, open loop; latency to the owner's socket."""
        n = self.profile.b4_clients
        bodies = [self.target.api_request(self.population, i) for i in range(n)]
        config = {
            "url": f"{self.target.url}/api/campaigns",
            "tokens": self.population.advertiser_tokens,
            "bodies": bodies,
            "rate": rate,
            "seconds": seconds,
            "maxSockets": 256,
            # Each call on a connection of its own, as a crowd's calls arrive (not a tidy pool).
            "connectionPerCall": True,
        }
        path = config_file(config)
        # Each run starts with the workers idle: a rung's emails are not the next rung's load.
        self.target.wait_idle()
        self.swarm.reset(sample=True)
        with self.meter() as cpu:
            driver = Child([*node_script("api_driver.mjs"), path])
            driver.ready()
            cpu.restart()
            driver.go(now_ms() + 50)
            result, driver_seconds = driver.result(timeout=seconds + 90)
            cpu.add("api driver", driver_seconds)
            accepted = sum(c for s, c in result["statuses"].items() if s.startswith("2"))
            self.swarm.wait_received(accepted, idle_seconds=3, max_seconds=60)
        Path(path).unlink(missing_ok=True)
        stats = self.swarm.stats(samples=True)
        latency = summary(stats["samples"])
        errors = {s: c for s, c in result["statuses"].items() if not s.startswith("2")}
        passed = (
            not errors
            and result["unanswered"] == 0
            and stats["received"] >= accepted
            and latency["p99"] is not None
            and latency["p99"] < budget_ms
        )
        return {
            "rate": rate,
            "seconds": seconds,
            "sent": result["sent"],
            "accepted": accepted,
            "errors": errors,
            "received": stats["received"],
            "latency_ms": latency,
            "response_ms": summary(result["responses"]),
            "response_ms_by_status": {
                status: summary(samples)
                for status, samples in result.get("responses_by_status", {}).items()
            },
            "driver_max_lag_ms": round(result["max_lag_ms"], 1),
            "passed": passed,
            "cpu": cpu.cores,
            # CPU milliseconds each role spent per accepted API call: the cost of one call.
            "cpu_ms_per_call": {
                role: round(cores * cpu.wall * 1000 / max(accepted, 1), 2)
                for role, cores in cpu.cores.items()
            },
        }

    def b4_probe(self, at_base: dict[str, Any]) -> tuple[float, list[dict[str, Any]]]:
        """Short runs up or down the ladder from B4's base rate: the highest that passed."""
        ladder = sorted(self.profile.b4_probe_rates)
        base = self.profile.b4_rate
        runs: list[dict[str, Any]] = []
        best = 0.0
        if at_base["passed"] and at_base["latency_ms"]["p99"] < PROBE_P99_MS:
            best = base
            for rate in [r for r in ladder if r > base]:
                run = self.b4_run(rate, self.profile.b4_probe_seconds, PROBE_P99_MS)
                runs.append(run)
                if not run["passed"]:
                    break
                best = rate
        else:
            for rate in reversed([r for r in ladder if r < base]):
                run = self.b4_run(rate, self.profile.b4_probe_seconds, PROBE_P99_MS)
                runs.append(run)
                if run["passed"]:
                    best = rate
                    break
        return best, runs
