"""Telegram and VK messages through ONE Celery worker process against the Bot API and VK stand-ins.

    python bench/messengers.py [--messages 1000] [--chats 10] [--latency 0.0]
        [--concurrency 64] [--channels telegram,vk] [--database-url URL] [--redis-url URL]

For each messenger it stores N notifications (through the real `notify()`) spread round-robin
over a few linked chats, starts one `celery worker -Q messengers --concurrency=1` (one pool
process) pointed at the stand-ins, enqueues the deliveries in the platform's own batches, and
times from the first enqueue until every delivery row is `sent`. It then reads the stand-in:
every message accepted exactly once, the most messages per second per bot (per community) and
per chat, and the breaches of the providers' limits the stand-in counted (there must be none).
The chats' 1 message/s (Telegram) and the community's 20 calls/s (VK) bound the time, not the
worker: 1,000 messages to 10 Telegram chats take at least 110 s, to VK about 56 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TG_TOKEN = "123456:BENCH-token"
VK_TOKEN = "vk1.a.bench-community-token"
VK_GROUP = 229000001
SECRET = "bench-secret-0123456789abcdef0123456789"
FRONTEND = "http://frontend.bench"
NOTIFICATION_LINK = re.compile(r"\?notification=([0-9A-Za-z-]+)")
CHANNELS = ("telegram", "vk")


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="per messenger")
    parser.add_argument("--chats", type=int, default=10, help="linked chats (peers) they go to")
    parser.add_argument("--latency", type=float, default=0.0, help="stand-in answer delay, s")
    parser.add_argument("--concurrency", type=int, default=64, help="EMAIL_CONCURRENCY")
    parser.add_argument("--channels", default="telegram,vk", help="telegram, vk or both")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server")
    args = parser.parse_args()
    args.channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    if not args.channels or set(args.channels) - set(CHANNELS):
        parser.error(f"--channels: choose from {', '.join(CHANNELS)}")
    return args


def main() -> int:
    """Run the benchmark once per messenger and print one summary line each."""
    args = parse()
    workdir = Path(tempfile.mkdtemp(prefix="bench-messengers-"))
    from tests.support.fake_telegram import FakeTelegram
    from tests.support.fake_vk import FakeVk
    from tests.support.net import free_port
    from tests.support.redis_server import RedisServer

    redis_server = None
    redis_url = args.redis_url
    if redis_url is None:
        redis_server = RedisServer(free_port(), log_dir=workdir).start()
        redis_url = redis_server.url
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    telegram = FakeTelegram(token=TG_TOKEN, latency=args.latency).start()
    vk = FakeVk(token=VK_TOKEN, group_id=VK_GROUP, latency=args.latency).start()
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET_KEY": SECRET,
        "ENABLE_BACKGROUND_TASKS": "false",
        "EMAIL_CONCURRENCY": str(args.concurrency),
        "OUTBOX_DIR": str(workdir / "outbox"),
        "FRONTEND_URL": FRONTEND,
        "TELEGRAM_BOT_TOKEN": TG_TOKEN,
        "TELEGRAM_API_BASE": telegram.url,
        "VK_COMMUNITY_TOKEN": VK_TOKEN,
        "VK_GROUP_ID": str(VK_GROUP),
        "VK_API_BASE": vk.url,
    }
    os.environ.update(env)  # before the app's modules read their settings
    ok = True
    try:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        prepare_database(database_url)
        stored = {c: store_notifications(c, args.messages, args.chats) for c in args.channels}
        log_path = workdir / "worker.log"
        with log_path.open("w") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
                 "-Q", "messengers", "--concurrency=1", "--without-mingle", "--without-gossip",
                 "--loglevel=INFO", "-n", "bench@%h"],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            wait_ready(worker, log_path)
            for channel in args.channels:
                delivery_of = stored[channel]
                elapsed = run(channel, list(delivery_of.values()))
                fake = telegram if channel == "telegram" else vk
                ok &= report(channel, fake, delivery_of, elapsed, args, database_url)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
    finally:
        telegram.close()
        vk.close()
        if redis_server is not None:
            redis_server.close()
    return 0 if ok else 1


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


def store_notifications(channel: str, count: int, chats: int) -> dict[str, str]:
    """`count` new_campaign notifications round-robin over `chats` users linked on `channel`.

    Each user's preferences leave only the inbox and `channel` on. Returns the notification id
    of each of the channel's deliveries (notification id -> delivery id).
    """
    from core.db import session_scope
    from core.models import MessengerLink, User
    from core.models.base import utcnow
    from core.services.notifications import notify

    print(f"storing {count} {channel} notifications to {chats} chats…", flush=True)
    other = "vk" if channel == "telegram" else "telegram"
    delivery_of: dict[str, str] = {}
    with session_scope() as session:
        users = []
        for i in range(chats):
            user = User(
                email=f"bench-{channel}-{i}-{uuid.uuid4().hex[:6]}@example.com",
                name=f"Bench User {i}",
                role="channel_owner",
                locale="ru" if i % 2 else "en",
                password_hash="unused",
                notification_prefs={"new_campaign": {"email": False, other: False}},
            )
            session.add(user)
            session.flush()
            # Chat and peer ids of private dialogs: positive, below VK's group chats.
            external_id = str(1_000_000 + i if channel == "telegram" else 2_000_000 + i)
            session.add(
                MessengerLink(
                    user_id=user.id, channel=channel, external_id=external_id, created_at=utcnow()
                )
            )
            users.append(user)
        session.flush()
        for n in range(count):
            payload = {
                "campaign_title": f"Campaign <{n}> & co",
                "channel_name": "Tech News",
                "price": "1500.00",
                "advertiser_name": "Acme",
            }
            notification = notify(session, users[n % chats], "new_campaign", payload)
            (delivery,) = [d for d in notification.deliveries if d.channel == channel]
            delivery_of[notification.id] = delivery.id
    return delivery_of


def wait_ready(worker: subprocess.Popen[bytes], log_path: Path) -> None:
    """Wait for the worker's "ready." line."""
    deadline = time.monotonic() + 60
    while "bench@" not in log_path.read_text() or " ready." not in log_path.read_text():
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit(f"worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)


def run(channel: str, ids: list[str]) -> float:
    """Enqueue the deliveries in the platform's batches; seconds until all rows are sent."""
    from celery import Celery
    from sqlalchemy import func, select

    from core.db import session_scope
    from core.models import Delivery
    from core.services.dispatch import DELIVERY_TASKS, batches

    client = Celery("bench")
    client.config_from_object("celeryconfig")
    start = time.monotonic()
    for batch in batches(ids):
        client.send_task(DELIVERY_TASKS[channel], args=[batch])
    sent = 0
    while sent < len(ids):
        if time.monotonic() - start > 900:
            raise SystemExit(f"timed out: {sent} of {len(ids)} {channel} deliveries sent")
        time.sleep(0.1)
        with session_scope() as session:
            query = (
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.channel == channel, Delivery.status == "sent")
            )
            sent = int(session.scalar(query) or 0)
    return time.monotonic() - start


def per_chat_max_per_second(stamps_by_chat: dict[str, list[float]]) -> int:
    """The most messages any one chat got within a 1.0 s window."""
    best = 0
    for unsorted in stamps_by_chat.values():
        stamps = sorted(unsorted)
        start = 0
        for end, at in enumerate(stamps):
            while at - stamps[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
    return best


def report(
    channel: str,
    fake: Any,
    delivery_of: dict[str, str],
    elapsed: float,
    args: argparse.Namespace,
    database_url: str,
) -> bool:
    """Print the channel's summary line; True when every message went exactly once, in limits."""
    stamps: dict[str, list[float]] = defaultdict(list)
    notified: Counter[str] = Counter()
    for message in fake.messages():
        if channel == "telegram":
            link = message.buttons[0]["url"] if message.buttons else ""
            chat = message.chat_id
        else:
            link, chat = message.message, message.peer_id
        match = NOTIFICATION_LINK.search(link)
        if match and match.group(1) in delivery_of:
            notified[match.group(1)] += 1
            stamps[chat].append(message.at)
    delivered = len(notified)
    duplicates = sum(n - 1 for n in notified.values())
    violations = fake.violations()
    count = len(delivery_of)
    if channel == "telegram":
        limits = (
            f"max {fake.max_per_second()}/s per bot, {per_chat_max_per_second(stamps)}/s per chat"
        )
    else:
        limits = (
            f"max {fake.max_per_second()}/s per community, "
            f"{per_chat_max_per_second(stamps)}/s per peer; "
            f"resends dropped by random_id {fake.duplicates_suppressed}"
        )
    cpu = platform.processor() or platform.machine()
    print(
        f"{channel}: {count} messages to {args.chats} chats in {elapsed:.1f} s = "
        f"{count / elapsed:.1f} msg/s; delivered {delivered}, duplicates {duplicates}; {limits}; "
        f"violations {violations} (1 worker process, EMAIL_CONCURRENCY={args.concurrency}, "
        f"stand-in latency {args.latency * 1000:.0f} ms, {database_url.split(':')[0]}, "
        f"{os.cpu_count()} CPUs {cpu}, Python {platform.python_version()})",
        flush=True,
    )
    return delivered == count and duplicates == 0 and not violations


if __name__ == "__main__":
    sys.exit(main())
