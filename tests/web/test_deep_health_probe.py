"""Deep health's message-queue probe proves this process's listener reads Redis."""

from __future__ import annotations

from tests.support.app_probe import run_app_probe

# python-socketio hands a process's own emits to it at once and its listener skips them
# when they come back from Redis, so a probe sent with emit() passed with no listener at all.
PROBE = """
import json
from web import create_app
from web import deep_health
from web.extensions import socketio

app = create_app()
server = socketio.server
seen = {}
# As if started, but no listener runs: nothing reads the channel.
server.manager_initialized = True
seen["without"] = deep_health._timed(deep_health._message_queue)["status"]
server.manager_initialized = False
seen["with"] = deep_health._timed(deep_health._message_queue)["status"]
print(json.dumps(seen))
"""


def test_the_probe_fails_without_a_listener_and_passes_with_one(redis_url: str) -> None:
    seen = run_app_probe(PROBE, redis_url)
    assert seen == {"without": "fail", "with": "ok"}
