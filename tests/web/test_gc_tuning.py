"""The web worker's collector tuning: thresholds, frozen start-up objects, timed passes, queues."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings
from tests.support.paths import REPO_ROOT
from web.gc_tuning import collect_on_a_clock

# Runs in its own interpreter: tune() changes process-wide state (the collector's thresholds,
# frozen objects, gc.callbacks) and create_app() installs process-wide things too.
TUNE = """
import gc, json
from core import metrics
from web import create_app
from web.gc_tuning import eventlet_socket_queue, tune

app = create_app()
tune(app)
eio = app.extensions["socketio"].server.eio
gc.collect()  # a full pass, timed like any other
metrics.flush()
body = app.test_client().get("/metrics").get_data(as_text=True)
print(json.dumps({
    "socket_queue": eio.create_queue is eventlet_socket_queue(),
    "frozen": gc.get_freeze_count(),
    "thresholds": gc.get_threshold(),
    "full_passes": [line for line in body.splitlines()
                    if line.startswith('admarket_gc_pause_seconds_count{generation="2"}')],
}))
"""

# engine.io's writer waits on its socket's queue with a timeout before every packet it sends.
QUEUE = """
import json
import eventlet
from eventlet.hubs import get_hub
from eventlet.queue import Queue
from web.gc_tuning import eventlet_socket_queue

def timers_while_waiting(queue):
    waiting = eventlet.spawn(queue.get, True, 45)
    eventlet.sleep(0)  # the getter blocks
    hub = get_hub()
    timers = [t for _, t in hub.timers + hub.next_timers if t.seconds == 45 and not t.called]
    queue.put("packet")
    return len(timers), waiting.wait()

print(json.dumps({
    "eventlet": timers_while_waiting(Queue()),
    "socket": timers_while_waiting(eventlet_socket_queue()()),
}))
"""


def run(script: str, env: dict[str, str]) -> dict:
    """Run `script` in a fresh interpreter at the repository's root; its last line as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tune_freezes_start_up_sets_thresholds_and_times_passes(
    redis_url: str, tmp_path: Path
) -> None:
    """The setting reaches the collector, and a full pass shows on /metrics by its generation."""
    seen = run(
        TUNE,
        {
            "APP_ENV": "development",
            "ASYNC_MODE": "eventlet",
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}",
            "WEB_GC_THRESHOLDS": "800,12,120",
        },
    )
    assert seen["socket_queue"] is True
    assert seen["frozen"] > 10_000  # the app and its libraries
    assert seen["thresholds"] == [800, 12, 120]
    assert len(seen["full_passes"]) == 1 and float(seen["full_passes"][0].split()[-1]) >= 1


class Stop(Exception):
    """Ends the clock's loop after a few ticks."""


def test_the_clock_collects_young_generations_and_a_full_pass_when_due() -> None:
    """Each tick is a middle pass; the third threshold's count of them brings a full one."""
    ticks: list[float] = []

    def sleep(seconds: float) -> None:
        if len(ticks) == 3:
            raise Stop
        ticks.append(seconds)

    saved = gc.get_threshold()
    before = [s["collections"] for s in gc.get_stats()]
    gc.set_threshold(saved[0], saved[1], 1)
    try:
        with pytest.raises(Stop):
            collect_on_a_clock(sleep, 0.25)
    finally:
        gc.set_threshold(*saved)
    after = [s["collections"] for s in gc.get_stats()]
    assert ticks == [0.25, 0.25, 0.25]
    assert after[1] - before[1] >= 3  # a middle pass (young ones with it) per tick
    assert after[2] - before[2] >= 1  # the full pass the third threshold called for


def test_socket_queue_waits_without_a_hub_timer() -> None:
    """eventlet's queue schedules a timer for each timed wait; the sockets' queue none."""
    seen = run(QUEUE, {})
    assert seen == {"eventlet": [1, "packet"], "socket": [0, "packet"]}


@pytest.mark.parametrize(
    ("raw", "parsed"), [("700,10,100", (700, 10, 100)), (" 2000, 5 ,50", (2000, 5, 50))]
)
def test_thresholds_are_read_from_comma_separated_numbers(raw: str, parsed: tuple) -> None:
    """Operators write WEB_GC_THRESHOLDS as three numbers."""
    settings = Settings(WEB_GC_THRESHOLDS=raw)
    assert tuple(settings.WEB_GC_THRESHOLDS) == parsed


@pytest.mark.parametrize("raw", ["700,0,100", "700,10", "a,b,c"])
def test_thresholds_that_would_stop_the_collector_or_do_not_parse_are_refused(raw: str) -> None:
    """0 turns automatic collection off, which would leak every reference cycle."""
    with pytest.raises(ValueError, match="WEB_GC_THRESHOLDS"):
        Settings(WEB_GC_THRESHOLDS=raw)
