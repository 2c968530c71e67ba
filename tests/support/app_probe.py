"""Run a few lines against the web app in an interpreter of their own, and read their answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.support.paths import REPO_ROOT


def run_app_probe(script: str, redis_url: str) -> Any:
    """Run `script` (development settings, threading mode); the JSON its last line printed.

    Its own interpreter: create_app() installs process-wide things (the dispatcher, the
    Socket.IO server) that the tests of this process must not inherit.
    """
    env = {**os.environ, "APP_ENV": "development", "ASYNC_MODE": "threading"}
    env["REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
