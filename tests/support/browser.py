"""Headless Chromium for the browser tests: Debian's build, driven by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.paths import REPO_ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# `playwright install` downloads its own browsers, which cannot work here: use Debian's, quietly.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SOCKET_IO_CLIENT = REPO_ROOT / "frontend" / "node_modules" / "socket.io-client" / "dist"


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make venv)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (make browser installs Debian's chromium with apt-get)"
    if not (SOCKET_IO_CLIENT / "socket.io.esm.min.js").is_file():
        return "frontend/node_modules has no socket.io-client (make jsdeps; needs npm)"
    return None
