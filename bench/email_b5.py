"""B5 through the existing email harness (bench/email_throughput.py), run as it documents."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import sqlalchemy as sa

from bench.procs import ROOT
from bench.stack import POSTGRES_ADMIN_URL
from tests.support.net import port_open

DATABASE_NAME = "bench_email_b5"
LINE = re.compile(
    r"(?P<emails>\d+) emails in (?P<seconds>[\d.]+) s = (?P<rate>\d+) emails/s .*"
    r"accepted (?P<accepted>\d+), duplicates (?P<duplicates>\d+)"
)


def _fresh_database() -> str | None:
    """A scratch PostgreSQL database of its own (the harness drops its public schema)."""
    if not port_open("127.0.0.1", 5432):
        return None
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)"))
            conn.execute(sa.text(f"CREATE DATABASE {DATABASE_NAME}"))
    finally:
        admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE_NAME}"


def run_b5(emails: int, redis_url: str) -> dict[str, Any]:
    """One run of the harness: emails/s from one worker to a stand-in answering in 50 ms."""
    command = [sys.executable, "bench/email_throughput.py", "--emails", str(emails)]
    command += ["--redis-url", redis_url]
    database_url = _fresh_database()
    if database_url:
        command += ["--database-url", database_url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    match = LINE.search(done.stdout)
    if done.returncode not in (0, 1) or match is None:
        raise RuntimeError(f"email harness failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return {
        "database": "PostgreSQL" if database_url else "SQLite",
        "emails": int(match["emails"]),
        "seconds": float(match["seconds"]),
        "emails_per_second": int(match["rate"]),
        "accepted": int(match["accepted"]),
        "duplicates": int(match["duplicates"]),
        "line": match.group(0),
    }
