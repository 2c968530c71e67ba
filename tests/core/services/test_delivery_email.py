"""The engine with the email adapter against the SendGrid stand-in: once each, retried by class."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from core.models import Delivery, User
from core.services.delivery_engine import BatchResult, deliver
from core.services.emails import SAMPLES
from core.services.notifications import notify
from core.settings import Settings
from tests.core.concurrency import race
from tests.core.conftest import Database
from tests.support.fake_sendgrid import FakeSendGrid
from worker.adapters.email import EmailAdapter
from worker.mailer import SendGridMailer

KEY = "SG.unit-test-key"
FRONTEND = "https://app.example.test"


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    """A SendGrid stand-in on a loopback port, for this test alone."""
    with FakeSendGrid(api_key=KEY) as server:
        yield server


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """Send threads, like one worker process's."""
    with ThreadPoolExecutor(16) as executor:
        yield executor


def mailer(fake: FakeSendGrid, key: str = KEY, timeout: float = 5.0) -> SendGridMailer:
    """The real adapter pointed at the stand-in."""
    return SendGridMailer(key, fake.url, "noreply@example.com", "Ad Marketplace", timeout)


def email_deliveries(
    db: Database,
    count: int,
    kind: str = "campaign_accepted",
    locale: str = "en",
    payload: dict[str, Any] | None = None,
) -> list[str]:
    """Store `count` notifications with an email delivery each; returns the delivery ids."""
    ids = []
    with db.scope() as session:
        for _ in range(count):
            user = User(
                email=f"u-{uuid.uuid4().hex[:10]}@example.com",
                name="Test User",
                role="advertiser",
                locale=locale,
                password_hash="unused",
            )
            session.add(user)
            session.flush()
            notification = notify(session, user, kind, payload or dict(SAMPLES[kind]))
            ids += [d.id for d in notification.deliveries if d.channel == "email"]
    return ids


def run(
    db: Database,
    ids: list[str],
    sender: SendGridMailer,
    pool: ThreadPoolExecutor,
    max_attempts: int = 5,
) -> BatchResult:
    """One task's worth of work, without Celery."""
    settings = Settings(_env_file=None, APP_ENV="test", FRONTEND_URL=FRONTEND)
    return deliver(
        db.scope,
        ids,
        EmailAdapter(sender, settings, pool),
        lease_seconds=60,
        max_attempts=max_attempts,
    )


def rows(db: Database, ids: list[str]) -> dict[str, Delivery]:
    """The delivery rows by id."""
    with db.scope() as session:
        found = session.scalars(select(Delivery).where(Delivery.id.in_(ids))).all()
        return {d.id: d for d in found}


def test_a_batch_is_sent_once_each_and_recorded(
    db: Database, fake: FakeSendGrid, pool: ThreadPoolExecutor
) -> None:
    """Every delivery is one accepted request with text then HTML, and a sent row."""
    ids = email_deliveries(db, 12)
    result = run(db, ids, mailer(fake), pool)
    assert result.counts() == {
        "sent": 12,
        "failed": 0,
        "skipped": 0,
        "suppressed": 0,
        "unlinked": 0,
        "retry": 0,
    }
    accepted = fake.messages()
    assert sorted(m.custom_args["delivery_id"] for m in accepted) == sorted(ids)
    for message in accepted:
        assert [c["type"] for c in message.body["content"]] == ["text/plain", "text/html"]
        assert message.body["from"] == {"email": "noreply@example.com", "name": "Ad Marketplace"}
        assert message.subject.startswith("Campaign accepted")
    stored = rows(db, ids)
    assert {d.status for d in stored.values()} == {"sent"}
    assert {d.provider_message_id for d in stored.values()} == {m.message_id for m in accepted}


def test_a_repeated_or_racing_batch_sends_nothing_twice(
    db: Database, fake: FakeSendGrid, pool: ThreadPoolExecutor
) -> None:
    """Duplicated tasks racing each other, then a redelivered one, still mean one email each."""
    ids = email_deliveries(db, 10)
    sender = mailer(fake)

    def task(barrier: Any) -> BatchResult:
        barrier.wait()
        return run(db, ids, sender, pool)

    results = race(task, task, task)
    assert sum(r.sent for r in results) == 10
    assert run(db, ids, sender, pool).skipped == 10
    assert len(fake.messages()) == 10
    assert len(fake.answered) == 10


def test_a_rate_limit_waits_for_the_reset_and_asks_once(db: Database, fake: FakeSendGrid) -> None:
    """A 429 holds every send of the process until X-RateLimit-Reset; nothing is sent twice."""
    ids = email_deliveries(db, 5)
    sender = mailer(fake)
    fake.rate_limit_seconds = 1.0
    fake.script(429)
    with ThreadPoolExecutor(1) as one_at_a_time:
        first = run(db, ids, sender, one_at_a_time)
        assert sorted(first.retry_ids) == sorted(ids) and first.sent == 0
        assert first.not_before is not None and first.not_before > time.time()
        assert [a.status for a in fake.answered] == [429], "later sends must not ask again"
        assert first.countdown(0, 1, 60) >= first.not_before - time.time()
        assert {d.status for d in rows(db, ids).values()} == {"pending"}
        assert all("429" in (d.error or "") for d in rows(db, ids).values())

        time.sleep(max(0.0, first.not_before - time.time()) + 0.05)
        second = run(db, first.retry_ids, sender, one_at_a_time)
    assert second.sent == 5
    assert sorted(m.custom_args["delivery_id"] for m in fake.messages()) == sorted(ids)


def test_server_errors_retry_only_the_failed_ones(db: Database, fake: FakeSendGrid) -> None:
    """5xx answers release just those deliveries; their retry sends each once."""
    ids = email_deliveries(db, 6)
    sender = mailer(fake)
    fake.script(500, 503)
    with ThreadPoolExecutor(1) as one_at_a_time:
        first = run(db, ids, sender, one_at_a_time)
        assert first.sent == 4 and len(first.retry_ids) == 2
        assert first.not_before is None
        second = run(db, first.retry_ids, sender, one_at_a_time)
    assert second.sent == 2
    delivered = [m.custom_args["delivery_id"] for m in fake.messages()]
    assert sorted(delivered) == sorted(ids) and len(set(delivered)) == 6
    assert {rows(db, ids)[d].attempts for d in first.retry_ids} == {2}


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Does not contain a valid address."),
        (403, "The from address does not match a verified Sender Identity."),
        (413, "Payload Too Large"),
    ],
)
def test_permanent_errors_fail_after_one_request(
    db: Database, fake: FakeSendGrid, pool: ThreadPoolExecutor, status: int, message: str
) -> None:
    """400/403/413 are recorded as failed with the provider's message and never asked again."""
    ids = email_deliveries(db, 3)
    with db.scope() as session:
        refused = session.get_one(Delivery, ids[0]).notification
        address = session.get_one(User, refused.user_id).email
    fake.refuse(address, status, message)
    sender = mailer(fake)
    result = run(db, ids, sender, pool)
    assert (result.sent, result.failed, result.retry_ids) == (2, 1, [])
    row = rows(db, ids)[ids[0]]
    assert row.status == "failed" and row.error is not None
    assert str(status) in row.error and message in row.error
    assert run(db, ids, sender, pool).skipped == 3
    assert len(fake.requests_to(address)) == 1


def test_a_wrong_api_key_is_permanent(
    db: Database, fake: FakeSendGrid, pool: ThreadPoolExecutor
) -> None:
    """401 is recorded with SendGrid's message, one request per email."""
    ids = email_deliveries(db, 2)
    result = run(db, ids, mailer(fake, key="SG.wrong"), pool)
    assert result.failed == 2 and len(fake.answered) == 2
    assert all("401" in (d.error or "") for d in rows(db, ids).values())


def test_timeouts_and_refused_connections_are_retried(
    db: Database, fake: FakeSendGrid, pool: ThreadPoolExecutor
) -> None:
    """A slow answer or nobody listening releases the delivery for a later try."""
    ids = email_deliveries(db, 2)
    fake.latency = 1.0
    slow = run(db, ids[:1], mailer(fake, timeout=0.2), pool)
    assert slow.retry_ids == ids[:1]
    gone = SendGridMailer(KEY, "http://127.0.0.1:9", "noreply@example.com", "X", 1.0)
    refused = run(db, ids[1:], gone, pool)
    assert refused.retry_ids == ids[1:]
    assert "unreachable" in (rows(db, ids)[ids[1]].error or "")


def test_retries_are_bounded_by_attempts(db: Database, fake: FakeSendGrid) -> None:
    """After the last allowed attempt a transient error is recorded as failed."""
    ids = email_deliveries(db, 1)
    fake.script(500, 500)
    sender = mailer(fake)
    with ThreadPoolExecutor(1) as pool:
        assert run(db, ids, sender, pool, max_attempts=2).retry_ids == ids
        last = run(db, ids, sender, pool, max_attempts=2)
    assert last.failed == 1
    assert (rows(db, ids)[ids[0]].error or "").startswith("gave up after 2 attempts: SendGrid 500")


def test_rate_limit_holds_do_not_use_up_attempts(db: Database, fake: FakeSendGrid) -> None:
    """However long SendGrid says 429, the email is held, not given up."""
    ids = email_deliveries(db, 1)
    fake.rate_limit_seconds = 30
    fake.script(429)
    sender = mailer(fake)
    with ThreadPoolExecutor(1) as pool:
        assert run(db, ids, sender, pool, max_attempts=2).retry_ids == ids
        for _ in range(3):  # a retry or the sweeper too early: nothing to claim until the reset
            assert run(db, ids, sender, pool, max_attempts=2).skipped == 1
    row = rows(db, ids)[ids[0]]
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.not_before is not None
    assert len(fake.answered) == 1


def test_an_unrenderable_snapshot_fails_without_a_request(
    db: Database, fake: FakeSendGrid, pool: ThreadPoolExecutor
) -> None:
    """A snapshot missing an amount cannot improve on retry: failed, nothing sent."""
    ids = email_deliveries(db, 1, kind="campaign_completed")
    with db.scope() as session:
        notification = session.get_one(Delivery, ids[0]).notification
        notification.payload = {k: v for k, v in notification.payload.items() if k != "payout"}
    assert run(db, ids, mailer(fake), pool).failed == 1
    assert fake.answered == []


def test_countdown_backs_off_with_jitter_and_honours_the_reset() -> None:
    """Exponential with full jitter, capped; a rate-limit reset wins."""
    plain = BatchResult(retry_ids=["x"])
    for retries in range(8):
        assert 0 <= plain.countdown(retries, 1, 60) <= min(60, 2**retries)
    limited = BatchResult(retry_ids=["x"], not_before=time.time() + 5)
    assert 4.5 <= limited.countdown(0, 1, 60) <= 6.5
