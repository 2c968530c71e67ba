"""Time the weekly cleanup deleting one million old notifications on PostgreSQL.

    python bench/cleanup.py [--old 1000000] [--fresh 100000] [--batch-size 5000]
        [--database-url postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--keep]

It builds the tables in a scratch schema of its own (`bench_cleanup`, dropped at the end
unless --keep), COPYs in `--old` notifications 31 to 400 days old and `--fresh` ones 0 to 29
days old, each with a live and an email delivery, ANALYZEs, then runs the real
`core.services.cleanup.delete_older_than` with the job's cutoff (30 days) and batch size.
It reports rows/s, the total time and how long each batch's transaction held its locks, and
checks that exactly the fresh rows remain.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JWT_SECRET_KEY", "bench-secret-0123456789abcdef0123456789")

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from core.models import Base  # noqa: E402
from core.services.cleanup import delete_older_than  # noqa: E402

SCHEMA = "bench_cleanup"
USERS = 1000
CHUNK = 100_000


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=int, default=1_000_000, help="notifications to delete")
    parser.add_argument("--fresh", type=int, default=100_000, help="notifications to keep")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--keep", action="store_true", help="leave the scratch schema behind")
    return parser.parse_args()


def in_schema(url: str) -> str:
    """The URL whose connections use the scratch schema only."""
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={SCHEMA}"})
        .render_as_string(hide_password=False)
    )


def copy_rows(engine: sa.Engine, table: str, columns: str, lines: Iterator[str]) -> None:
    """COPY tab-separated lines into `table`, CHUNK lines per statement."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        buffer = io.StringIO()
        for count, line in enumerate(lines, start=1):
            buffer.write(line)
            if count % CHUNK == 0:
                buffer.seek(0)
                cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
                buffer = io.StringIO()
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
        raw.commit()
    finally:
        raw.close()


def seed(engine: sa.Engine, old: int, fresh: int, now: datetime) -> None:
    """Users, then old and fresh notifications with two deliveries each, by COPY."""
    users = [str(uuid.uuid4()) for _ in range(USERS)]
    copy_rows(
        engine,
        "users",
        "id, email, name, password_hash, role, locale, balance, last_seq, created_at",
        (f"{u}\tu{i}@bench.test\tU{i}\tx\tadvertiser\tru\t0\t0\t{now.isoformat()}\n"
         for i, u in enumerate(users)),
    )  # fmt: skip
    ids = [str(uuid.uuid4()) for _ in range(old + fresh)]

    def created(n: int) -> str:
        # Old rows spread over 31..400 days back, fresh ones over 0..29 days.
        if n < old:
            age = timedelta(days=31) + timedelta(seconds=(n * 7919) % (369 * 86400))
        else:
            age = timedelta(seconds=((n - old) * 7919) % (29 * 86400))
        return (now - age).isoformat()

    copy_rows(
        engine,
        "notifications",
        "id, user_id, seq, type, title, message, payload, created_at",
        (f"{nid}\t{users[n % USERS]}\t{n // USERS + 1}\tbroadcast\tTitle\tMessage\t{{}}\t"
         f"{created(n)}\n" for n, nid in enumerate(ids)),
    )  # fmt: skip
    copy_rows(
        engine,
        "deliveries",
        "id, notification_id, channel, status, attempts, created_at",
        (f"{uuid.uuid4()}\t{nid}\t{channel}\tsent\t1\t{created(n)}\n"
         for n, nid in enumerate(ids) for channel in ("inbox", "email")),
    )  # fmt: skip
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


def main() -> int:
    """Seed, run the cleanup once, check and print the figures."""
    args = parse()
    admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        server = conn.execute(sa.text("SHOW server_version")).scalar_one()
    engine = sa.create_engine(in_schema(args.database_url))
    try:
        Base.metadata.create_all(engine)
        now = datetime.now(UTC)
        started = time.monotonic()
        seed(engine, args.old, args.fresh, now)
        print(f"seeded {args.old:,} old + {args.fresh:,} fresh notifications, 2 deliveries each,"
              f" in {time.monotonic() - started:.1f} s")  # fmt: skip

        sessions = sessionmaker(bind=engine, expire_on_commit=False)
        batch_seconds: list[float] = []

        @contextmanager
        def timed_scope() -> Iterator[Session]:
            began = time.monotonic()
            with sessions.begin() as session:
                yield session
            batch_seconds.append(time.monotonic() - began)

        began = time.monotonic()
        totals = delete_older_than(timed_scope, now - timedelta(days=30), args.batch_size)
        took = time.monotonic() - began

        with engine.connect() as conn:
            left = conn.execute(sa.text("SELECT COUNT(*) FROM notifications")).scalar_one()
            left_d = conn.execute(sa.text("SELECT COUNT(*) FROM deliveries")).scalar_one()
        assert totals["notifications"] == args.old, totals
        assert (left, left_d) == (args.fresh, 2 * args.fresh), (left, left_d)
        ms = sorted(s * 1000 for s in batch_seconds)
        print(f"machine  : {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs,"
              f" Python {platform.python_version()}, PostgreSQL {server}")  # fmt: skip
        print(f"deleted  : {totals['notifications']:,} notifications + "
              f"{totals['deliveries']:,} deliveries in {totals['batches']} batches "
              f"of {args.batch_size}")  # fmt: skip
        rows = totals["notifications"] + totals["deliveries"]
        print(f"time     : {took:.1f} s = {totals['notifications'] / took:,.0f} notifications/s"
              f" ({rows / took:,.0f} rows/s with deliveries)")  # fmt: skip
        p99 = ms[max(0, int(len(ms) * 0.99) - 1)]
        print(f"per batch: median {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms,"
              f" max {ms[-1]:.0f} ms (how long one transaction holds its locks)")  # fmt: skip
        print(f"kept     : {left:,} fresh notifications, {left_d:,} deliveries (exact)")
    finally:
        engine.dispose()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
