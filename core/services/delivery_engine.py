"""The one delivery engine: claim a batch, send it through its channel's adapter, record outcomes.

Every channel (inbox push, email, Telegram, VK) goes through `deliver()`. An adapter only knows
its provider: it sends a batch and says, per delivery, what happened (an `Outcome`). The engine
claims (so a duplicated or redelivered task sends nothing twice), records outcomes as they land
(so a crash forgets at most FLUSH_SECONDS of finished sends), meters them, unlinks accounts a
provider refuses for good, and leaves transient failures pending for one backoff policy.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from core import metrics
from core.services.deliveries import (
    Claimed,
    claim_many,
    fail,
    finish,
    finish_many,
    load,
    release,
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


class Adapter(Protocol):
    """One channel's provider: send a batch, say what happened to each delivery."""

    channel: str
    # Messengers send to a linked account: a delivery without one is suppressed, not sent.
    needs_link: bool

    def send(self, items: Sequence[Claimed]) -> Iterable[tuple[Claimed, Outcome]]:
        """Send every item, yielding each one's outcome as soon as it is known."""
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
) -> Iterator[tuple[Claimed, Outcome]]:
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


def concurrently_grouped(
    pool: Executor,
    send_group: Callable[[list[Claimed]], list[Outcome]],
    groups: Sequence[list[Claimed]],
) -> Iterator[tuple[Claimed, Outcome]]:
    """Like `concurrently`, one task per group whose items go in order (one chat's messages)."""
    futures = {pool.submit(send_group, group): group for group in groups}
    pending: set[Future[list[Outcome]]] = set(futures)

    def outcomes(future: Future[list[Outcome]]) -> list[tuple[Claimed, Outcome]]:
        group = futures[future]
        try:
            return list(zip(group, future.result(), strict=True))
        except Exception as exc:
            log.exception("sending %d deliveries failed unexpectedly", len(group))
            return [(item, retry(f"{type(exc).__name__}: {exc}")) for item in group]

    try:
        while pending:
            done, pending = wait(pending, timeout=FLUSH_SECONDS)
            for future in done:
                yield from outcomes(future)
    except GeneratorExit:
        for future in pending:
            future.cancel()
        raise
    except BaseException:
        running = {f for f in pending if not f.cancel()}
        finished, _ = wait(running)
        for future in finished:
            yield from outcomes(future)
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
) -> BatchResult:
    """Claim the batch, send what was won through `adapter`, and record each outcome.

    Only claimed deliveries are sent, so a duplicated or redelivered task sends nothing twice.
    If the adapter raises (or the task is interrupted), the deliveries without an outcome go
    back to pending before the error propagates, for the task's retry or the sweeper.
    """
    result = BatchResult()
    with session_factory() as session:
        won = claim_many(session, delivery_ids, lease_seconds)
        claimed = load(session, won) if won else []
    result.skipped = len(delivery_ids) - len(won)
    if not claimed:
        return result
    recorded: set[str] = set()
    batch: list[tuple[Claimed, Outcome]] = []
    if adapter.needs_link:
        batch = [
            (i, suppressed(f"no {adapter.channel} account linked")) for i in claimed if not i.link
        ]
        claimed = [item for item in claimed if item.link]
    flushed_at = time.monotonic()

    def flush() -> None:
        nonlocal batch, flushed_at
        _record(session_factory, batch, max_attempts, result, adapter.channel, on_unlink)
        recorded.update(item.delivery_id for item, _ in batch)
        batch, flushed_at = [], time.monotonic()

    try:
        for item, outcome in adapter.send(claimed):
            batch.append((item, outcome))
            if time.monotonic() - flushed_at >= FLUSH_SECONDS:
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
        plain = [(i, o) for i, o in sent_ if set(o.extra) <= {"provider_message_id"}]
        finish_many(
            session, [(i.delivery_id, o.extra.get("provider_message_id")) for i, o in plain]
        )
        for item, outcome in sent_:
            if not set(outcome.extra) <= {"provider_message_id"}:
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
    release(session, delivery_id, outcome.detail, refund=outcome.not_before is not None)
    result.retry_ids.append(delivery_id)
    if outcome.not_before is not None:
        result.not_before = max(result.not_before or 0.0, outcome.not_before)
    return "retry"
