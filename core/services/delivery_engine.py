"""The one delivery engine: claim a batch, send it through its channel's adapter, record outcomes.

Every channel (inbox push, email, Telegram, VK) goes through `deliver()`. An adapter only knows
its provider: it sends a batch and says, per delivery, what happened (an `Outcome`). The engine
claims (so a duplicated or redelivered task sends nothing twice), records outcomes as they land
(so a crash forgets at most FLUSH_SECONDS of finished sends), meters them, unlinks accounts a
provider refuses for good, and leaves transient failures pending for one backoff policy.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from core import metrics
from core.services.deliveries import (
    Claimed,
    claim_and_load,
    fail,
    finish,
    finish_many,
    release,
    renew,
    suppress,
)

log = logging.getLogger(__name__)
# How often finished sends are written down: short, since an unrecorded send may be repeated.
FLUSH_SECONDS = 0.05
# Never ask the broker to hold a retry longer than this (far below its visibility timeout).
MAX_COUNTDOWN = 600.0

Kind = Literal["sent", "retry", "failed", "unlink", "suppressed"]


@dataclass(frozen=True)
class Outcome:
    """What became of one send, as its adapter read the provider's answer."""

    kind: Kind
    detail: str = ""
    # Columns to store with a send (provider_message_id).
    extra: dict[str, Any] = field(default_factory=dict)
    # A provider-imposed wait (a Unix time): 429's retry_after, SendGrid's rate-limit reset.
    not_before: float | None = None


def sent(provider_message_id: str | None = None) -> Outcome:
    """The provider took it."""
    return Outcome("sent", extra={"provider_message_id": provider_message_id})


def retry(detail: str, not_before: float | None = None) -> Outcome:
    """It may work later: a 5xx, a timeout, a rate limit (then not before `not_before`)."""
    return Outcome("retry", detail, not_before=not_before)


def failed(detail: str) -> Outcome:
    """It can never work (a bad request, a template the snapshot cannot fill)."""
    return Outcome("failed", detail)


def unlink(detail: str) -> Outcome:
    """The account refuses us for good (bot blocked, no permission): unlink it, send no more."""
    return Outcome("unlink", detail)


def suppressed(detail: str) -> Outcome:
    """Deliberately not sent (the address bounced, the account is not linked)."""
    return Outcome("suppressed", detail)


# One delivery's outcome, or None: a heartbeat that lets the engine record what has landed.
Landed = tuple[Claimed, Outcome] | None


class Adapter(Protocol):
    """One channel's provider: send a batch, say what happened to each delivery."""

    channel: str
    # Messengers send to a linked account: a delivery without one is suppressed, not sent.
    needs_link: bool
    # Its sends wait on the network or a provider's limit, so a batch may outlast the lease:
    # the engine renews it while the batch runs (a thread, not worth it for a quick adapter).
    paced: bool

    def send(self, items: Sequence[Claimed]) -> Iterable[Landed]:
        """Send every item, yielding each one's outcome as soon as it is known (or None)."""
        ...


# Called with (session, the delivery, reason) when a provider refuses an account for good.
Unlinker = Callable[[Any, Claimed, str], None]


@dataclass
class BatchResult:
    """What happened to one batch, and which deliveries a retry should try again."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    suppressed: int = 0
    unlinked: int = 0
    retry_ids: list[str] = field(default_factory=list)
    # The latest provider-imposed wait among the deliveries to retry (a Unix time), if any.
    not_before: float | None = None

    def counts(self) -> dict[str, int]:
        """The counts a task returns for its logs."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "suppressed": self.suppressed,
            "unlinked": self.unlinked,
            "retry": len(self.retry_ids),
        }

    def countdown(self, retries: int, backoff: float, maximum: float) -> float:
        """Seconds before retrying: past the provider's wait, else exponential with full jitter."""
        if self.not_before is not None:
            wait_for = max(0.0, self.not_before - time.time())
            return min(MAX_COUNTDOWN, wait_for + random.uniform(0, 1))
        return random.uniform(0, min(maximum, backoff * (2**retries)))


def concurrently(
    pool: Executor, send_one: Callable[[Claimed], Outcome], items: Sequence[Claimed]
) -> Iterator[Landed]:
    """Run `send_one` for each item on `pool`, yielding outcomes as they finish.

    Interrupted (a task's time limit), it cancels the sends not yet started, waits for the
    running ones and yields their outcomes before the error goes on: a send that happened is
    always recorded, so it is never repeated.
    """
    futures = {pool.submit(send_one, item): item for item in items}
    pending: set[Future[Outcome]] = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=FLUSH_SECONDS)
            for future in done:
                yield futures[future], _result(futures[future], future)
            yield None  # a heartbeat: the engine writes down what landed, however slow the rest
    except GeneratorExit:
        # The engine stopped reading (it could not record): start nothing more.
        for future in pending:
            future.cancel()
        raise
    except BaseException:
        running = {f for f in pending if not f.cancel()}
        finished, _ = wait(running)
        for future in finished:
            yield futures[future], _result(futures[future], future)
        raise


# What a group sender calls for each outcome as soon as it has it.
Emit = Callable[[Claimed, Outcome], None]


def concurrently_grouped(
    pool: Executor,
    send_group: Callable[[list[Claimed], Emit, threading.Event], None],
    groups: Sequence[list[Claimed]],
) -> Iterator[Landed]:
    """One task per group whose items go in order (one chat's messages), outcomes as they come.

    `send_group(items, emit, stop)` emits each item's outcome when it has it, so a finished
    send is recorded within FLUSH_SECONDS like any other, and stops sending once `stop` is set.
    Interrupted, the groups stop, the sends in flight finish and are recorded, then the error
    goes on; a group's items without an outcome are then released by the engine.
    """
    landed: queue.SimpleQueue[tuple[Claimed, Outcome]] = queue.SimpleQueue()
    stop = threading.Event()

    def run(group: list[Claimed]) -> None:
        emitted: set[str] = set()

        def emit(item: Claimed, outcome: Outcome) -> None:
            emitted.add(item.delivery_id)
            landed.put((item, outcome))

        try:
            send_group(group, emit, stop)
        except Exception as exc:  # an adapter bug: what it did not report is retried
            log.exception("sending %d deliveries failed unexpectedly", len(group))
            for item in group:
                if item.delivery_id not in emitted:
                    landed.put((item, retry(f"{type(exc).__name__}: {exc}")))

    def drain() -> Iterator[tuple[Claimed, Outcome]]:
        while True:
            try:
                yield landed.get_nowait()
            except queue.Empty:
                return

    futures = [pool.submit(run, group) for group in groups]
    pending: set[Future[None]] = set(futures)
    try:
        while pending:
            _, pending = wait(pending, timeout=FLUSH_SECONDS)
            yield from drain()
            yield None  # a heartbeat, as in `concurrently`
        yield from drain()
    except GeneratorExit:
        stop.set()
        for future in pending:
            future.cancel()
        raise
    except BaseException:
        stop.set()
        running = {f for f in pending if not f.cancel()}
        wait(running)
        yield from drain()
        raise


def _result(item: Claimed, future: Future[Outcome]) -> Outcome:
    """A finished send's outcome; an exception the adapter did not classify is retried."""
    try:
        return future.result()
    except Exception as exc:
        log.exception("sending delivery %s failed unexpectedly", item.delivery_id)
        return retry(f"{type(exc).__name__}: {exc}")


def deliver(
    session_factory: Callable[[], Any],
    delivery_ids: Sequence[str],
    adapter: Adapter,
    *,
    lease_seconds: int,
    max_attempts: int,
    on_unlink: Unlinker | None = None,
    one_statement_factory: Callable[[], Any] | None = None,
) -> BatchResult:
    """Claim the batch, send what was won through `adapter`, and record each outcome.

    `one_statement_factory`, if given, opens the sessions whose work is one statement on
    PostgreSQL (the claim; recording a group that was all sent), which need no transaction
    around them (session_scope(autocommit=True)).

    Only claimed deliveries are sent, so a duplicated or redelivered task sends nothing twice.
    If the adapter raises (or the task is interrupted), the deliveries without an outcome go
    back to pending before the error propagates, for the task's retry or the sweeper.
    """
    result = BatchResult()
    single = one_statement_factory or session_factory
    with single() as session:
        claimed = claim_and_load(session, delivery_ids, lease_seconds, adapter.needs_link)
    result.skipped = len(delivery_ids) - len(claimed)
    if not claimed:
        return result
    recorded: set[str] = set()
    ids = [item.delivery_id for item in claimed]
    renewer = _LeaseRenewer(session_factory, ids, recorded, lease_seconds, adapter.paced)
    batch: list[tuple[Claimed, Outcome]] = []
    if adapter.needs_link:
        batch = [
            (i, suppressed(f"no {adapter.channel} account linked")) for i in claimed if not i.link
        ]
        claimed = [item for item in claimed if item.link]
    flushed_at = time.monotonic()

    def flush() -> None:
        nonlocal batch, flushed_at
        # All plain sends: one statement (finish_many); anything else, a transaction.
        factory = single if all(_plain_send(o) for _, o in batch) else session_factory
        _record(factory, batch, max_attempts, result, adapter.channel, on_unlink)
        recorded.update(item.delivery_id for item, _ in batch)
        batch, flushed_at = [], time.monotonic()

    try:
        with renewer:
            for landed in adapter.send(claimed):
                if landed is not None:
                    batch.append(landed)
                if batch and time.monotonic() - flushed_at >= FLUSH_SECONDS:
                    flush()
    except BaseException as exc:
        batch += [
            (item, retry(f"interrupted before sending: {type(exc).__name__}"))
            for item in claimed
            if item.delivery_id not in recorded and all(item is not b for b, _ in batch)
        ]
        flush()
        raise
    flush()
    return result


class _LeaseRenewer:
    """Keeps a running batch's lease fresh, so a slow batch is never taken for an abandoned one.

    A batch paced by a provider's limit (25 Telegram messages/s) can outlast the lease; without
    this, the sweeper would hand its unsent rows to another worker and both would send them.
    """

    def __init__(
        self,
        session_factory: Callable[[], Any],
        delivery_ids: list[str],
        recorded: set[str],
        lease_seconds: int,
        enabled: bool,
    ) -> None:
        self.enabled = enabled
        self.session_factory = session_factory
        self.delivery_ids = delivery_ids
        self.recorded = recorded
        self.every = max(lease_seconds / 3, 0.5)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)

    def __enter__(self) -> _LeaseRenewer:
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.stopped.set()
            self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            # A snapshot: the recorder adds to `recorded` from the engine's thread.
            done = set(self.recorded)
            unsent = [d for d in self.delivery_ids if d not in done]
            try:
                with self.session_factory() as session:
                    renew(session, unsent)
            except Exception:  # the lease then runs out as if this process had died
                log.warning(
                    "could not renew the lease of %d deliveries", len(unsent), exc_info=True
                )


def _plain_send(outcome: Outcome) -> bool:
    """A send whose only stored column is the provider's message id (finish_many's case)."""
    return outcome.kind == "sent" and set(outcome.extra) <= {"provider_message_id"}


def _record(
    session_factory: Callable[[], Any],
    outcomes: list[tuple[Claimed, Outcome]],
    max_attempts: int,
    result: BatchResult,
    channel: str,
    on_unlink: Unlinker | None,
) -> None:
    """Write a group of outcomes in one transaction, meter them, and add them to the result."""
    if not outcomes:
        return
    with session_factory() as session:
        sent_ = [(i, o) for i, o in outcomes if o.kind == "sent"]
        # The common case in one statement; other stored columns take the row-by-row path.
        plain = [(i, o) for i, o in sent_ if _plain_send(o)]
        finish_many(
            session, [(i.delivery_id, o.extra.get("provider_message_id")) for i, o in plain]
        )
        for item, outcome in sent_:
            if not _plain_send(outcome):
                finish(session, item.delivery_id, **outcome.extra)
        result.sent += len(sent_)
        for item, outcome in outcomes:
            kind = _store_other(session, item, outcome, max_attempts, result, on_unlink)
            metrics.count("deliveries", channel=channel, outcome=kind)


def _store_other(
    session: Any,
    item: Claimed,
    outcome: Outcome,
    max_attempts: int,
    result: BatchResult,
    on_unlink: Unlinker | None,
) -> str:
    """Record one outcome that is not a plain send; returns the outcome as metered."""
    delivery_id = item.delivery_id
    if outcome.kind == "sent":
        return "sent"
    if outcome.kind == "failed":
        fail(session, delivery_id, outcome.detail)
        result.failed += 1
        return "failed"
    if outcome.kind == "suppressed":
        suppress(session, delivery_id, outcome.detail)
        result.suppressed += 1
        return "suppressed"
    if outcome.kind == "unlink":
        # Recorded as failed for good: the account refused; later notifications skip it.
        fail(session, delivery_id, f"unlinked: {outcome.detail}")
        if on_unlink is not None:
            on_unlink(session, item, outcome.detail)
        result.unlinked += 1
        return "unlinked"
    if outcome.not_before is None and item.attempts >= max_attempts:
        fail(session, delivery_id, f"gave up after {item.attempts} attempts: {outcome.detail}")
        result.failed += 1
        return "failed"
    # Waiting out a provider's limit is not a failed attempt: it must not use up the bound.
    wait = outcome.not_before
    release(
        session,
        delivery_id,
        outcome.detail,
        refund=wait is not None,
        not_before=None if wait is None else datetime.fromtimestamp(wait, UTC),
    )
    result.retry_ids.append(delivery_id)
    if outcome.not_before is not None:
        result.not_before = max(result.not_before or 0.0, outcome.not_before)
    return "retry"
