"""Inside a benchmarked web worker: on SIGUSR2, write its collector's state to a JSON file.

Installed by bench/socket_churn.py's gunicorn configuration, never by the app. The request file
(`GC_PROBE_FILE` + ".request") says "count", "collect" (a full collection first) or "passes"
(the duration of every pass since the last such request, by generation; the app's own
`gc_pause_seconds` only keeps buckets, and older code has none).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any


def snapshot(top: int = 25) -> dict[str, Any]:
    """Tracked objects (frozen ones apart), by type, and the collector's counters."""
    objects = gc.get_objects()
    by_type = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    state = {
        "tracked": len(objects),
        "frozen": gc.get_freeze_count(),
        "count": gc.get_count(),
        "threshold": gc.get_threshold(),
        "collections": [s["collections"] for s in gc.get_stats()],
        "collected": [s["collected"] for s in gc.get_stats()],
        "by_type": dict(by_type.most_common(top)),
    }
    del objects
    return state


class Passes:
    """Every pass's duration in milliseconds, by generation (a `gc.callbacks` hook)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.ms: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        """Time one pass."""
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.ms[info["generation"]].append((time.perf_counter() - self.started) * 1000)

    def take(self) -> dict[int, list[float]]:
        """The durations since the last take."""
        taken = {g: [round(ms, 2) for ms in durations] for g, durations in self.ms.items()}
        for durations in self.ms.values():
            durations.clear()
        return taken


PASSES = Passes()


def _answer(path: Path) -> None:
    """Write the snapshot the request file asks for."""
    request = path.with_name(path.name + ".request")
    what = request.read_text().strip() if request.exists() else "count"
    out: dict[str, Any] = {"at": time.time(), "request": what}
    if what == "passes":
        out["passes_ms"] = PASSES.take()
    out["before"] = snapshot()
    if what == "collect":
        started = time.perf_counter()
        out["freed"] = gc.collect()
        out["collect_ms"] = round((time.perf_counter() - started) * 1000, 1)
        out["after"] = snapshot()
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(out))
    temporary.replace(path)


def install() -> None:
    """Answer SIGUSR2 (gunicorn's workers leave it at its default, which would end them)."""
    path = Path(os.environ["GC_PROBE_FILE"])
    gc.callbacks.append(PASSES)
    signal.signal(signal.SIGUSR2, lambda *_: _answer(path))
