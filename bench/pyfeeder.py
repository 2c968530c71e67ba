"""Feeds the platform as its workers do: worker/emitter.py publishing to the Socket.IO queue.

    python -m bench.pyfeeder CONFIG.json

CONFIG.json: {"mode": "broadcast"|"targeted", "users": [...], "count": N, "rate": R,
"delay": D, "offset": 0}.
REDIS_URL (and the other settings) come from the environment, as in a worker. rate 0 sends
as fast as it can; otherwise message i is scheduled for go + delay + i / rate and carries that
time as data.t (open loop). Prints one JSON line, like bench/node/feeder.mjs.

Like the Node feeder (whose Redis client pipelines what one event-loop tick sends), the
messages due at once go out in one pipelined batch, as a worker's task publishes its emits
(worker/emitter.py); a burst goes in batches of BURST_BATCH.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The Node feeder yields to its event loop every 500 sends.
BURST_BATCH = 500


def body(i: int, t: float, kind: str) -> dict[str, Any]:
    """A notification event shaped like `notifications.to_event()`, timed by `t` (epoch ms)."""
    return {
        "id": f"bench-{i}",
        "seq": i + 1,
        "type": kind,
        "title": "Benchmark",
        "message": "A benchmark notification of about the size of a real one, in one line of text.",
        "data": {
            "t": t,
            "campaign_id": "00000000-0000-0000-0000-000000000000",
            "channel_name": "Tech News",
        },
        "timestamp": datetime.fromtimestamp(t / 1000, UTC).isoformat().replace("+00:00", "Z"),
    }


def main() -> int:
    """Send the messages the command line asks for and print what was sent when."""
    config = json.loads(Path(sys.argv[1]).read_text())
    from core.rooms import SOCKETIO_CHANNEL
    from core.settings import get_settings
    from worker.emitter import StrictRedisManager, emit_to_user, emitting_together

    users: list[str] = config.get("users", [])
    offset = int(config.get("offset", 0))
    together = emitting_together
    if config["mode"] == "broadcast":
        manager = StrictRedisManager(
            get_settings().redis_url, channel=SOCKETIO_CHANNEL, write_only=True
        )
        together = manager.batch

        def send(i: int, t: float) -> None:
            manager.emit("notification", body(i, t, "broadcast"), namespace="/")

    else:

        def send(i: int, t: float) -> None:
            emit_to_user(users[(offset + i) % len(users)], "notification", body(i, t, "bench"))

    count, rate = int(config["count"]), float(config.get("rate") or 0)
    if config["mode"] != "broadcast":
        emit_to_user(users[0], "bench-warmup", {})  # connect before the clock starts
    else:
        manager.emit("bench-warmup", {}, namespace="/", room="bench-warmup")
    # Ready; the controller's go line is the epoch ms every feeder of a window starts from.
    print("ready", flush=True)
    start_at = float(sys.stdin.readline()) + float(config.get("delay", 0))
    while time.time() * 1000 < start_at:
        time.sleep(min(0.005, max(0.0, (start_at - time.time() * 1000) / 1000)))
    first = time.time() * 1000
    sent, max_lag = 0, 0.0
    if not rate:
        while sent < count:
            with together():
                for _ in range(min(BURST_BATCH, count - sent)):
                    send(sent, time.time() * 1000)
                    sent += 1
    else:
        period = 1000 / rate
        while sent < count:
            now = time.time() * 1000
            due = min(count, int((now - start_at) / period) + 1)
            with together():
                while sent < due:
                    t = start_at + sent * period
                    max_lag = max(max_lag, time.time() * 1000 - t)
                    send(sent, t)
                    sent += 1
            time.sleep(0.001)
    last = time.time() * 1000
    print(json.dumps({"sent": sent, "first_at": first, "last_at": last, "max_lag_ms": max_lag}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
