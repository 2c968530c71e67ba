"""The one delivery engine with a scripted adapter: claims, outcomes, unlinks, interruptions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from sqlalchemy import select

from core.models import Delivery, MessengerLink, User
from core.services import deliveries, notifications
from core.services import delivery_engine as engine
from core.services.deliveries import Claimed
from tests.core.conftest import Database, Factory

LEASE = 60


class ScriptedAdapter:
    """Answers each delivery with the next scripted outcome (sent when the script runs out)."""

    def __init__(
        self, *outcomes: engine.Outcome, channel: str = "inbox", fail_at: int | None = None
    ) -> None:
        self.channel = channel
        self.needs_link = channel in ("telegram", "vk")
        self.paced = True
        self.script = list(outcomes)
        self.fail_at = fail_at
        self.calls: list[Claimed] = []

    def send(self, items: Sequence[Claimed]) -> Iterator[engine.Landed]:
        for item in items:
            if self.fail_at is not None and len(self.calls) == self.fail_at:
                raise KeyboardInterrupt("the task was interrupted")  # a BaseException, like a limit
            self.calls.append(item)
            outcome = self.script.pop(0) if self.script else engine.sent(f"msg-{len(self.calls)}")
            yield item, outcome


@pytest.fixture
def user(make: Factory) -> User:
    return make.user(email="ann@example.com")


def new_deliveries(make: Factory, user: User, count: int, kind: str = "broadcast") -> list[str]:
    """Commit `count` notifications with one pending delivery each; returns their ids."""
    ids = []
    for n in range(count):
        note = notifications.notify(make.session, user, kind, {}, title=f"t{n}", message=f"m{n}")
        ids += [d.id for d in note.deliveries]
    make.session.commit()
    return ids


def states(db: Database, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """(status, error) by delivery id."""
    with db.scope() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.status, Delivery.error).where(Delivery.id.in_(ids))
        )
        return {d: (status, error) for d, status, error in rows}


def run(db: Database, ids: list[str], adapter: ScriptedAdapter, **kwargs) -> engine.BatchResult:
    return engine.deliver(db.scope, ids, adapter, lease_seconds=LEASE, max_attempts=3, **kwargs)


def test_each_is_sent_once_and_a_repeat_finds_them_done(db, make, user):
    ids = new_deliveries(make, user, 3)
    adapter = ScriptedAdapter()

    assert run(db, ids, adapter).counts() == {
        "sent": 3,
        "failed": 0,
        "skipped": 0,
        "suppressed": 0,
        "unlinked": 0,
        "retry": 0,
    }
    assert {status for status, _ in states(db, ids).values()} == {"sent"}
    assert adapter.calls[0].user.email == "ann@example.com"  # usable after its session closed
    again = ScriptedAdapter()
    assert run(db, ids, again).skipped == 3 and again.calls == []


def test_outcomes_are_recorded_by_kind(db, make, user):
    ids = new_deliveries(make, user, 4)
    adapter = ScriptedAdapter(
        engine.failed("400 bad request"),
        engine.retry("503 unavailable"),
        engine.suppressed("address undeliverable"),
        engine.sent("m-4"),
    )

    result = run(db, ids, adapter)

    order = [item.delivery_id for item in adapter.calls]
    assert states(db, order) == {
        order[0]: ("failed", "400 bad request"),
        order[1]: ("pending", "503 unavailable"),
        order[2]: ("suppressed", "address undeliverable"),
        order[3]: ("sent", None),
    }
    assert result.retry_ids == [order[1]] and result.not_before is None


def test_a_provider_wait_is_kept_and_does_not_use_up_attempts(db, make, user):
    ids = new_deliveries(make, user, 1)
    for n in range(5):
        wait = time.time() - 1 + n / 10  # already over, so the next run may claim it
        result = run(db, ids, ScriptedAdapter(engine.retry("429", not_before=wait)))
        assert result.retry_ids == ids and result.not_before == wait
    with db.scope() as session:
        assert session.get_one(Delivery, ids[0]).attempts == 0


def test_retries_are_bounded_by_attempts(db, make, user):
    ids = new_deliveries(make, user, 1)
    for _ in range(2):
        assert run(db, ids, ScriptedAdapter(engine.retry("timeout"))).retry_ids == ids
    last = run(db, ids, ScriptedAdapter(engine.retry("timeout")))
    assert last.failed == 1
    assert states(db, ids)[ids[0]] == ("failed", "gave up after 3 attempts: timeout")


def test_an_interruption_records_what_was_sent_and_releases_the_rest(db, make, user):
    ids = new_deliveries(make, user, 4)
    adapter = ScriptedAdapter(fail_at=2)

    with pytest.raises(KeyboardInterrupt):
        run(db, ids, adapter)

    sent_ids = {item.delivery_id for item in adapter.calls}
    found = states(db, ids)
    assert {d for d, (status, _) in found.items() if status == "sent"} == sent_ids
    rest = [d for d in ids if d not in sent_ids]
    assert all(found[d][0] == "pending" and "interrupted" in found[d][1] for d in rest)


def test_messengers_without_a_linked_account_are_suppressed(db, make, user):
    ids = new_deliveries(make, user, 1)
    with db.scope() as session:
        session.query(Delivery).filter(Delivery.id.in_(ids)).update({"channel": "telegram"})
    adapter = ScriptedAdapter(channel="telegram")

    result = run(db, ids, adapter)

    assert result.suppressed == 1 and adapter.calls == []
    assert states(db, ids)[ids[0]] == ("suppressed", "no telegram account linked")


def test_an_unlink_outcome_fails_the_delivery_and_calls_the_unlinker(db, make, user):
    ids = new_deliveries(make, user, 1)
    with db.scope() as session:
        session.query(Delivery).filter(Delivery.id.in_(ids)).update({"channel": "telegram"})
        session.add(MessengerLink(user_id=user.id, channel="telegram", external_id="42"))
    unlinked: list[tuple[str, str, str]] = []

    def unlinker(session, item, reason):
        unlinked.append((item.user.id, item.channel, reason))

    adapter = ScriptedAdapter(engine.unlink("403 bot was blocked"), channel="telegram")
    result = run(db, ids, adapter, on_unlink=unlinker)

    assert adapter.calls[0].link == "42"
    assert result.unlinked == 1
    assert unlinked == [(user.id, "telegram", "403 bot was blocked")]
    assert states(db, ids)[ids[0]] == ("failed", "unlinked: 403 bot was blocked")


def test_a_provider_wait_keeps_every_claimer_off_until_it_passes(db, make, user):
    ids = new_deliveries(make, user, 1)
    in_a_minute = time.time() + 60

    run(db, ids, ScriptedAdapter(engine.retry("429", not_before=in_a_minute)))

    with db.scope() as session:
        assert deliveries.claim_many(session, ids, LEASE) == []  # the task's early retry
        assert deliveries.due_for_sweep(session, grace_seconds=0, lease_seconds=LEASE) == {}
    with time_machine.travel(in_a_minute + 1), db.scope() as session:
        assert deliveries.claim_many(session, ids, LEASE) == ids


class SlowAdapter(ScriptedAdapter):
    """Takes `seconds` per send: a batch paced by a provider's limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def send(self, items):
        for item in items:
            time.sleep(self.seconds)
            yield item, engine.sent()


def test_a_slow_batch_keeps_its_lease_so_nobody_else_takes_it(db, make, user):
    ids = new_deliveries(make, user, 4)
    lease = 1  # renewed every 0.5 s; the batch takes 2 s
    seen_abandoned: list[list[str]] = []

    def watch(stop: threading.Event) -> None:
        while not stop.wait(0.2):
            with db.scope() as session:
                due = deliveries.due_for_sweep(session, grace_seconds=0, lease_seconds=lease)
                seen_abandoned.append(due.get("inbox", []))

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    try:
        result = engine.deliver(
            db.scope, ids, SlowAdapter(0.5), lease_seconds=lease, max_attempts=3
        )
    finally:
        stop.set()
        watcher.join()

    assert result.sent == 4
    assert len(seen_abandoned) >= 5 and not any(seen_abandoned)


def test_a_group_s_sends_are_recorded_as_each_lands_not_when_the_group_ends(db, make, user):
    ids = new_deliveries(make, user, 3)
    recorded_mid_group: list[bool] = []

    def send_group(items, emit, stop):
        first, *rest = items
        emit(first, engine.sent())
        # Before the rest of the chat's messages: the first must already be written down.
        deadline = time.monotonic() + 5
        while (
            time.monotonic() < deadline
            and states(db, [first.delivery_id])[first.delivery_id][0] != "sent"
        ):
            time.sleep(0.02)
        recorded_mid_group.append(states(db, [first.delivery_id])[first.delivery_id][0] == "sent")
        for item in rest:
            emit(item, engine.sent())

    class Grouped(ScriptedAdapter):
        def send(self, items):
            pool = ThreadPoolExecutor(1)
            return engine.concurrently_grouped(pool, send_group, [list(items)])

    result = run(db, ids, Grouped())

    assert result.sent == 3 and recorded_mid_group == [True]
