"""Where a live notification's time goes, read from the app processes' own log lines.

    python -m bench.anatomy var/bench/profile-*/logs

Joins, by Celery task id, the lines the platform writes anyway (JSON lines, as in production): the
web's "enqueued notifications.deliver_live", the realtime worker's "Task … received" and
its "emitted … N ms after commit" (whose N dates the commit). Prints each stage's p50, p90 and
p99 in milliseconds: commit → enqueued (the rest of the request, the linger, the publish),
enqueued → received (Redis and the worker's consumer), received → emitted (the task: claim,
emit, record). The clocks are the processes' own, to the millisecond; the web writes its line
once the publish has returned, so a worker may log the receipt first (a stage below zero).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.stats import summary

TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"
RECEIVED = re.compile(r"^Task notifications\.deliver_live\[(?P<task_id>[^\]]+)\] received$")
AFTER_COMMIT = re.compile(r", (?P<ms>\d+) ms after commit$")
STAGES = ("commit → enqueued", "enqueued → received", "received → emitted", "commit → emitted")


def records(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """The JSON log records in these files; other lines (a process's own output) are skipped."""
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("{"):
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue


def _ms(record: dict[str, Any]) -> float:
    """The record's time in epoch milliseconds."""
    return datetime.strptime(record["time"], TIME_FORMAT).timestamp() * 1000


def stages(paths: Iterable[Path]) -> dict[str, list[float]]:
    """Each stage's durations (ms), one per live task seen whole (its first emit for the end)."""
    enqueued: dict[str, float] = {}
    received: dict[str, float] = {}
    emitted: dict[str, tuple[float, float]] = {}
    for record in records(paths):
        message, task_id = record.get("message", ""), record.get("task_id")
        if message.startswith("enqueued notifications.deliver_live") and task_id:
            enqueued[task_id] = _ms(record)
        elif match := RECEIVED.match(message):
            received[match["task_id"]] = _ms(record)
        elif message.startswith("emitted") and task_id and task_id not in emitted:
            after = AFTER_COMMIT.search(message)
            if after:
                at = _ms(record)
                emitted[task_id] = (at, at - float(after["ms"]))
    out: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for task_id, (emitted_at, committed_at) in emitted.items():
        if task_id not in enqueued or task_id not in received:
            continue
        out["commit → enqueued"].append(enqueued[task_id] - committed_at)
        out["enqueued → received"].append(received[task_id] - enqueued[task_id])
        out["received → emitted"].append(emitted_at - received[task_id])
        out["commit → emitted"].append(emitted_at - committed_at)
    return out


def report(log_dir: Path) -> str:
    """A few lines: the number of live tasks joined and each stage's percentiles."""
    found = stages(sorted(log_dir.glob("*.log")))
    lines = [f"live tasks traced through the logs: {len(found['commit → emitted'])}"]
    for stage, values in found.items():
        if values:
            p = summary(values)
            figures = "  ".join(f"{q} {p[q]:6.1f}" for q in ("p50", "p90", "p99"))
            lines.append(f"  {stage:20s} {figures} ms")
    return "\n".join(lines)


def main() -> int:
    """Print the report of the log directory named on the command line."""
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print(__doc__, file=sys.stderr)
        return 2
    print(report(Path(sys.argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
