"""Well-known filesystem locations and names used by the test harness."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
LOGS_DIR = ARTIFACTS_DIR / "logs"


def safe_name(text: str) -> str:
    """Turn a pytest node id into a string usable as a single directory name."""
    text = text.replace("::", "-").replace("/", "-")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_-")[:150] or "unnamed"


def fresh_log_dir(name: str) -> Path:
    """Return an emptied `test-artifacts/logs/<name>` so it only holds the latest run."""
    path = LOGS_DIR / safe_name(name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path
