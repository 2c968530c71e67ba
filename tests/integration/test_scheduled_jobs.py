"""Scheduled jobs under a real beat on a compressed schedule: on time, and once per period."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text

from core.models.base import new_id
from core.services.jobs.cadence import DEFAULT_CADENCES
from tests.support.clients import Account
from tests.support.stack import Stack

JOBS = ("update_platform_stats", "cleanup_old_notifications", "send_pending_withdrawal_reminders")
# Seconds per period: short enough to see several periods in a test, long enough for a run.
PERIODS = {"update_platform_stats": 6, "cleanup_old_notifications": 6,
           "send_pending_withdrawal_reminders": 4}  # fmt: skip
COMPRESSED = {"JOB_INTERVALS": json.dumps(PERIODS), "JOB_CATCH_UP_SECONDS": "3600"}
CRONTABS = tuple(DEFAULT_CADENCES.values())
STARTED = re.compile(r"job (\w+) period (\S+) \((\w+), attempt (\d+)\): started")
CATCH_UP_DONE = re.compile(r"Task maintenance\.catch_up\[[\w-]+\] succeeded")


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.3)


def maintenance_drained(stack: Stack) -> bool:
    """No maintenance task is queued in Redis, prefetched or running in a worker.

    Tasks are acked late (celeryconfig.py), so a task stays in kombu's `unacked` hash until it
    has finished; a catch-up sends the runs it finds missing before it finishes.
    """
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
    try:
        for key in client.scan_iter(match="maintenance*"):
            if client.type(key) == b"list" and client.llen(key):
                return False
        return not any("maintenance" in json.loads(raw)[1:] for raw in client.hvals("unacked"))
    finally:
        client.close()


def wait_drained(stack: Stack, timeout: float = 30) -> None:
    """Wait until maintenance_drained() holds on two looks in a row.

    Twice, because a message a worker is fetching is, for an instant, in neither place.
    """

    def drained() -> bool:
        if not maintenance_drained(stack):
            return False
        time.sleep(0.3)
        return maintenance_drained(stack)

    wait_until(drained, timeout, f"every maintenance task to finish\n{stack.logs()}")


def rows(stack: Stack, sql: str, **params: Any) -> list[Any]:
    """Run a query on the stack's database."""
    with stack.engine().connect() as conn:
        return list(conn.execute(text(sql), params).all())


def runs_since(stack: Stack, since: datetime) -> list[Any]:
    """(job, period, status, trigger, attempts, result) of the runs started since `since`."""
    found = rows(
        stack,
        "SELECT job, period, status, trigger, attempts, result FROM job_runs"
        " WHERE started_at >= :since ORDER BY started_at",
        since=since,
    )
    return [(*r[:5], json.loads(r[5]) if isinstance(r[5], str) else r[5]) for r in found]


def funded_owner(stack: Stack, balance: int = 1_000_000) -> Account:
    """A channel owner with money on their balance (minor units), as payouts would leave it."""
    owner = stack.api().register(role="channel_owner")
    with stack.engine().begin() as conn:
        conn.execute(
            text("UPDATE users SET balance = :b WHERE id = :u"), {"b": balance, "u": owner.id}
        )
    return owner


@pytest.fixture(autouse=True)
def settle_old_withdrawals(database_url: str) -> Iterator[None]:
    """Process the backdated withdrawals afterwards, so later tests' beats remind no one."""
    yield
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE withdrawals SET status = 'processed' WHERE status = 'pending'")
            )
    finally:
        engine.dispose()


def old_withdrawal(stack: Stack, owner: Account, amount: str, hours: float) -> str:
    """Request a withdrawal through the API, then move its request time `hours` back."""
    answer = stack.api().as_user(owner).post("/api/withdrawals", json={"amount": amount})
    assert answer.status_code == 201, answer.text
    withdrawal_id = answer.json()["id"]
    with stack.engine().begin() as conn:
        conn.execute(
            text("UPDATE withdrawals SET created_at = :t WHERE id = :w"),
            {"t": datetime.now(UTC) - timedelta(hours=hours), "w": withdrawal_id},
        )
    return withdrawal_id


def old_notification(stack: Stack, user_id: str, days: float) -> str:
    """Store a notification (with its deliveries) `days` old, straight into the table."""
    nid, created = new_id(), datetime.now(UTC) - timedelta(days=days)
    with stack.engine().begin() as conn:
        seq = conn.execute(
            text("SELECT COALESCE(MAX(seq), 0) + 1000 FROM notifications WHERE user_id = :u"),
            {"u": user_id},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO notifications (id, user_id, seq, type, title, message, payload,"
                " created_at) VALUES (:id, :u, :seq, 'broadcast', 't', 'm', '{}', :c)"
            ),
            {"id": nid, "u": user_id, "seq": seq, "c": created},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (id, notification_id, channel, status, attempts,"
                " created_at) VALUES (:id, :n, 'inbox', 'sent', 1, :c)"
            ),
            {"id": new_id(), "n": nid, "c": created},
        )
    return nid


def reminders_of(stack: Stack, user_id: str) -> list[Any]:
    """(created_at, payload) of the user's withdrawal reminders, oldest first."""
    return rows(
        stack,
        "SELECT created_at, payload FROM notifications WHERE user_id = :u"
        " AND type = 'withdrawal_reminder' ORDER BY seq",
        u=user_id,
    )


def started_lines(stack: Stack) -> Counter[tuple[str, str]]:
    """How many times each (job, period) was started, from every worker's log."""
    counts: Counter[tuple[str, str]] = Counter()
    for worker in stack.workers:
        for match in STARTED.finditer(worker.log_text()):
            counts[(match[1], match[2])] += 1
    return counts


def test_each_job_runs_on_its_compressed_schedule_under_a_real_beat(make_stack) -> None:
    """Beat sends each job; stats appear, old notifications go, admins are reminded live + email."""
    stack = make_stack(extra_env=COMPRESSED).start(web=1, workers=1)
    since = datetime.now(UTC)
    admin = stack.create_admin()
    owner = funded_owner(stack)
    withdrawal_id = old_withdrawal(stack, owner, "1500.00", hours=25)
    old_id = old_notification(stack, owner.id, days=31)
    fresh_id = old_notification(stack, owner.id, days=29)
    tab = stack.live(admin.access_token)

    stack.start_beat()
    done = wait_until(
        # Sent by beat on the schedule (the start-up catch-up may have run a period first).
        lambda: (
            {r[0] for r in runs_since(stack, since) if r[2:4] == ("succeeded", "beat")} >= set(JOBS)
            or None
        ),
        45,
        f"a successful scheduled run of every job\n{stack.logs()}",
    )
    assert done

    # Stats: the API gives the latest day, and a series on request.
    api = stack.api(token=admin.access_token)
    latest = api.get("/api/admin/stats").json()
    assert latest["users"]["admin"] >= 1 and latest["withdrawals_pending"]["count"] >= 1
    assert isinstance(latest["turnover"], str)
    assert isinstance(api.get("/api/admin/stats?days=7").json()["series"], list)
    # Cleanup: the 31-day-old row is gone, the 29-day-old one kept.
    kept = {
        r[0]
        for r in rows(
            stack, "SELECT id FROM notifications WHERE id IN (:a, :b)", a=old_id, b=fresh_id
        )
    }
    assert kept == {fresh_id}
    # Reminders: live to the admin's socket, stored, and emailed (the outbox, no SendGrid key).
    live = tab.wait_for(lambda n: n["type"] == "withdrawal_reminder", timeout=20)
    assert withdrawal_id in [w["id"] for w in live["data"]["withdrawals"]]
    wait_until(
        lambda: rows(
            stack,
            "SELECT d.status FROM deliveries d JOIN notifications n ON n.id = d.notification_id"
            " WHERE n.user_id = :u AND n.type = 'withdrawal_reminder' AND d.channel = 'email'"
            " AND d.status = 'sent'",
            u=admin.id,
        ),
        30,
        "the reminder email to be sent",
    )
    # Visible: the admin endpoint, /health and the logs say what ran.
    jobs = {j["name"]: j for j in api.get("/api/admin/jobs").json()["jobs"]}
    assert all(jobs[name]["last_run"]["status"] in ("succeeded", "running") for name in JOBS)
    assert jobs["send_pending_withdrawal_reminders"]["schedule"] == "every 4 s"
    health = stack.api().get("/health").json()
    assert set(health["jobs"]) == set(JOBS)
    beat_log = stack.beats[0].log_text()
    for name in JOBS:
        assert f"Sending due task maintenance.{name}" in beat_log


def test_two_beats_make_one_effect_per_period(make_stack) -> None:
    """Two beats and two workers over several periods: each (job, period) runs exactly once."""
    stack = make_stack(extra_env=COMPRESSED).start(web=1, workers=2)
    since = datetime.now(UTC)
    admin = stack.create_admin()
    owner = funded_owner(stack)
    withdrawal_id = old_withdrawal(stack, owner, "250.00", hours=25)
    for beat in [stack.start_beat(wait=False), stack.start_beat(wait=False)]:
        beat.wait_ready()

    wait_until(
        lambda: len(reminders_of(stack, admin.id)) >= 4 or None,
        60,
        f"four reminder windows\n{stack.logs()}",
    )
    # The withdrawal is processed: later windows say nothing more about it.
    answer = stack.api(token=admin.access_token).post(f"/api/withdrawals/{withdrawal_id}/process")
    assert answer.status_code == 200, answer.text
    processed_at = datetime.now(UTC)

    def windows_since_processed() -> int:
        runs = runs_since(stack, processed_at)
        return sum(
            r[0] == "send_pending_withdrawal_reminders" and r[2] == "succeeded" for r in runs
        )

    # Two more windows run (one entirely after the processing) before the beats stop.
    wait_until(
        lambda: windows_since_processed() >= 2,
        30,
        f"two reminder windows after the withdrawal was processed\n{stack.logs()}",
    )
    for beat in stack.beats:
        beat.stop()
    wait_drained(stack)

    runs = runs_since(stack, since)
    per_period = Counter((job, period) for job, period, *_ in runs)
    assert per_period and max(per_period.values()) == 1
    counts = Counter(job for job, *_ in runs)
    assert counts["send_pending_withdrawal_reminders"] >= 4, counts
    assert counts["update_platform_stats"] >= 2 and counts["cleanup_old_notifications"] >= 2
    # Both beats sent every period's message; the workers' logs show one start per period.
    for beat in stack.beats:
        assert "Sending due task maintenance.send_pending_withdrawal_reminders" in beat.log_text()
    started = started_lines(stack)
    assert started and max(started.values()) == 1, started.most_common(3)
    skipped = sum(w.log_text().count("skipped, done or running elsewhere") for w in stack.workers)
    assert skipped >= 1, "the second beat's messages should have met a held lease"

    # One reminder per window, none after the withdrawal was processed. A window is the run's
    # period, not the wall clock at which the reminder was written: a start-up catch-up runs the
    # period before in the same wall-clock window as the one beat sends on time.
    reminders = reminders_of(stack, admin.id)
    reminding = [
        r[5]["window"]
        for r in runs
        if r[0] == "send_pending_withdrawal_reminders" and r[5] and r[5].get("notifications")
    ]
    assert len(reminding) == len(set(reminding)) == len(reminders), (reminding, reminders)
    mentioning = [
        _aware(created)
        for created, payload in reminders
        if withdrawal_id in [w["id"] for w in _json(payload)["withdrawals"]]
    ]
    assert len(mentioning) >= 4
    assert max(mentioning) < processed_at + timedelta(seconds=1)


def test_run_job_runs_each_job_now_and_prints_what_it_did(stack: Stack) -> None:
    """`flask --app wsgi run-job NAME` in the foreground, against the stack's database."""
    stack.start(web=1, workers=0)
    admin = stack.create_admin()
    owner = funded_owner(stack)
    old_withdrawal(stack, owner, "10.00", hours=30)
    for name in JOBS:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "run-job", name],
            cwd=stack.cwd, env=stack.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{name}: succeeded in "), done.stdout
    # Earlier tests' admins share the database: at least this one was reminded.
    assert re.search(r"^  notifications: [1-9]", done.stdout, re.M), done.stdout
    assert len(reminders_of(stack, admin.id)) == 1
    stats = stack.api(token=admin.access_token).get("/api/admin/stats").json()
    assert stats["day"] == datetime.now(UTC).date().isoformat()
    manual = rows(
        stack, "SELECT COUNT(*) FROM job_runs WHERE trigger = 'manual' AND period IS NULL"
    )
    assert manual[0][0] >= 3
    refused = stack.api(token=owner.access_token).get("/api/admin/stats")
    assert refused.status_code == 403


def test_beat_start_catches_up_missed_periods_once(make_stack) -> None:
    """With the real crontabs, a beat starting after a missed run has it run once, not twice."""
    stack = make_stack().start(web=0, workers=1)
    now = datetime.now(UTC)
    if any(now - cadence.period_start(now) < timedelta(seconds=90) for cadence in CRONTABS):
        pytest.skip("a job's period has just begun: its run belongs to beat, not the catch-up")
    # Earlier tests' beats (same database) may have caught up these very periods already.
    with stack.engine().begin() as conn:
        conn.execute(text("DELETE FROM job_runs"))
    since = datetime.now(UTC)
    stack.start_beat()
    wait_until(
        lambda: {r[0] for r in runs_since(stack, since) if r[3] == "catch_up"} >= set(JOBS) or None,
        45,
        f"the catch-up runs of every job\n{stack.logs()}",
    )
    stack.start_beat()  # a second start-up catch-up finds nothing missing
    # Two catch-ups done: each beat's at its start (the periodic one is JOB_CATCH_UP_SECONDS away).
    wait_until(
        lambda: sum(len(CATCH_UP_DONE.findall(w.log_text())) for w in stack.workers) >= 2,
        30,
        f"the second beat's start-up catch-up\n{stack.logs()}",
    )
    wait_drained(stack)  # whatever that catch-up sent has run too
    runs = runs_since(stack, since)
    assert Counter(job for job, *_ in runs) == dict.fromkeys(JOBS, 1), runs


def _aware(value: Any) -> datetime:
    """A timestamp from either backend, as aware UTC (SQLite returns naive strings)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json(value: Any) -> dict[str, Any]:
    """A JSON column's value from either backend."""
    return json.loads(value) if isinstance(value, str) else value
