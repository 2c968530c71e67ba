"""The limit as the platform's own Redis client sees it: a redis-py pub/sub round trip.

    python -m bench.pylimit CONFIG.json   # {"redisUrl": U, "rate": R, "seconds": S, "burst": N}

Like bench/node/redis_rtt.mjs: open-loop round trips at R/s for S seconds, then N messages as
fast as one publisher sends them, through one subscriber (a thread). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis


def main() -> int:
    """Measure and print the round-trip samples and the burst rate."""
    config = json.loads(Path(sys.argv[1]).read_text())
    client = redis.Redis.from_url(config["redisUrl"])
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("bench-rtt-py")
    state: dict[str, Any] = {"received": 0, "last_at": 0.0, "samples": []}
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.1)
            if message is None:
                continue
            at = time.time() * 1000
            state["received"] += 1
            state["last_at"] = at
            t = float(message["data"].split(b" ", 1)[0])
            if t > 0:
                state["samples"].append(at - t)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.2)
    filler = "x" * 300
    rate, total = float(config["rate"]), int(config["rate"] * config["seconds"])
    period = 1000 / rate
    start_at = time.time() * 1000 + 100
    sent = 0
    while sent < total:
        due = min(total, int((time.time() * 1000 - start_at) / period) + 1)
        while sent < due:
            client.publish("bench-rtt-py", f"{start_at + sent * period} {filler}")
            sent += 1
        time.sleep(0.001)
    deadline = time.monotonic() + 5
    while state["received"] < total and time.monotonic() < deadline:
        time.sleep(0.01)
    state["received"] = 0
    burst_start = time.time() * 1000
    pipe = client.pipeline(transaction=False)
    for i in range(config["burst"]):
        pipe.publish("bench-rtt-py", f"0 {filler}")
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    deadline = time.monotonic() + 30
    while state["received"] < config["burst"] and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    listener.join()
    burst_rate = state["received"] / ((state["last_at"] - burst_start) / 1000)
    print(
        json.dumps(
            {
                "samples": state["samples"],
                "burst": config["burst"],
                "burst_received": state["received"],
                "burst_rate": burst_rate,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
