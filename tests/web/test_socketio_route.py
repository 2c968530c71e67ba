"""Socket.IO events run in a request context whose URL matches, so they leave no garbage cycles."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.paths import REPO_ROOT

# Runs in its own interpreter: create_app() installs process-wide things (the dispatcher, the
# Socket.IO server) that the other tests in this process must not inherit.
PROBE = """
import json
from flask import request
from web import create_app

app = create_app()
seen = {}
upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
for name, headers in (("polling", {}), ("websocket", upgrade)):
    with app.test_request_context("/socket.io/", headers=headers, query_string="EIO=4"):
        seen[name] = repr(request.routing_exception)
print(json.dumps(seen))
"""


def test_the_socket_io_path_matches_a_rule_for_both_transports(redis_url: str) -> None:
    """No NotFound or WebsocketMismatch (with its traceback) is stored per Socket.IO event."""
    env = {**os.environ, "APP_ENV": "development", "ASYNC_MODE": "threading"}
    env["REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"polling": "None", "websocket": "None"}
