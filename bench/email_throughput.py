"""Emails per second from ONE Celery worker process against a SendGrid stand-in answering in 50 ms.

    python bench/email_throughput.py [--emails 5000] [--latency 0.05] [--concurrency 64]
        [--database-url URL] [--redis-url URL]

It stores N notifications with an email delivery each (through the real `notify()`), starts
one `celery worker --concurrency=1` (one pool process) pointed at the stand-in, enqueues the
deliveries in the platform's own batches, and times from the first enqueue until every
delivery row is `sent`. It then checks the stand-in got every email exactly once.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "SG.bench-key"
SECRET = "bench-secret-0123456789abcdef0123456789"


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.05, help="stand-in answer delay, s")
    parser.add_argument("--concurrency", type=int, default=64, help="EMAIL_CONCURRENCY")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    return parser.parse_args()


def main() -> int:
    """Run the benchmark once and print the figure."""
    args = parse()
    workdir = Path(tempfile.mkdtemp(prefix="bench-email-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "JWT_SECRET_KEY": SECRET,
        "ENABLE_BACKGROUND_TASKS": "false",
        "EMAIL_CONCURRENCY": str(args.concurrency),
        "SENDGRID_API_KEY": KEY,
        "OUTBOX_DIR": str(workdir / "outbox"),
    }
    os.environ.update(env)  # before the app's modules read their settings

    import redis

    from tests.support.fake_sendgrid import FakeSendGrid

    redis.Redis.from_url(args.redis_url).flushdb()
    prepare_database(database_url)
    ids = store_notifications(args.emails)
    with FakeSendGrid(api_key=KEY, latency=args.latency) as fake:
        log_path = workdir / "worker.log"
        worker_env = {**os.environ, "SENDGRID_API_HOST": fake.url, "PYTHONPATH": str(ROOT)}
        with log_path.open("w") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
                 "-Q", "email", "--concurrency=1", "--without-mingle", "--without-gossip",
                 "--loglevel=INFO", "-n", "bench@%h"],
                cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            wait_ready(worker, log_path)
            elapsed = run(ids)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        counts = Counter(m.custom_args["delivery_id"] for m in fake.messages())
    duplicates = sum(1 for c in counts.values() if c > 1)
    cpu = platform.processor() or platform.machine()
    print(
        f"{len(ids)} emails in {elapsed:.2f} s = {len(ids) / elapsed:.0f} emails/s "
        f"(1 worker process, EMAIL_CONCURRENCY={args.concurrency}, stand-in latency "
        f"{args.latency * 1000:.0f} ms, {database_url.split(':')[0]}, {os.cpu_count()} CPUs "
        f"{cpu}, Python {platform.python_version()}); accepted {len(counts)}, "
        f"duplicates {duplicates}"
    )
    return 0 if duplicates == 0 and len(counts) == len(ids) else 1


def prepare_database(database_url: str) -> None:
    """An empty, migrated database."""
    from sqlalchemy import text

    from core.db import session_scope

    if database_url.startswith("postgresql"):
        with session_scope() as session:
            session.execute(text("DROP SCHEMA public CASCADE"))
            session.execute(text("CREATE SCHEMA public"))
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ},
        check=True,
        capture_output=True,
    )


def store_notifications(count: int) -> list[str]:
    """`count` completed-campaign notifications (half ru, half en); their email delivery ids."""
    from core.db import session_scope
    from core.models import User
    from core.services.notifications import notify

    print(f"storing {count} notifications…", flush=True)
    ids: list[str] = []
    with session_scope() as session:
        for i in range(count):
            user = User(
                email=f"bench-{i}-{uuid.uuid4().hex[:6]}@example.com",
                name=f"Bench User {i}",
                role="channel_owner",
                locale="ru" if i % 2 else "en",
                password_hash="unused",
            )
            session.add(user)
            session.flush()
            payload = {
                "campaign_id": str(uuid.uuid4()),
                "campaign_title": f"Campaign {i}",
                "channel_id": str(uuid.uuid4()),
                "channel_name": "Tech News",
                "advertiser_name": "Acme",
                "price": "1500.00",
                "fee": "150.00",
                "payout": "1350.00",
            }
            notification = notify(session, user, "campaign_completed", payload)
            ids += [d.id for d in notification.deliveries if d.channel == "email"]
    return ids


def wait_ready(worker: subprocess.Popen[bytes], log_path: Path) -> None:
    """Wait for the worker's "ready." line."""
    deadline = time.monotonic() + 60
    while "bench@" not in log_path.read_text() or " ready." not in log_path.read_text():
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit(f"worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)


def run(ids: list[str]) -> float:
    """Enqueue every delivery in the platform's batches; seconds until all rows are sent."""
    from celery import Celery
    from sqlalchemy import func, select

    from core.db import session_scope
    from core.models import Delivery
    from core.services.dispatch import DELIVERY_TASKS, batches

    client = Celery("bench")
    client.config_from_object("celeryconfig")
    start = time.monotonic()
    for batch in batches(ids):
        client.send_task(DELIVERY_TASKS["email"], args=[batch])
    sent = 0
    while sent < len(ids):
        if time.monotonic() - start > 600:
            raise SystemExit("timed out")
        time.sleep(0.05)
        with session_scope() as session:
            query = select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
            sent = int(session.scalar(query) or 0)
    return time.monotonic() - start


if __name__ == "__main__":
    sys.exit(main())
