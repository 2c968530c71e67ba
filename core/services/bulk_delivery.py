"""Deliver a batch with many sends in flight: claim all, send on a thread pool, record outcomes."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any

from core.services.deliveries import (
    Claimed,
    PermanentFailure,
    RetryLater,
    Sender,
    Suppressed,
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


@dataclass
class BatchResult:
    """What happened to one batch, and which deliveries a retry should try again."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    suppressed: int = 0
    retry_ids: list[str] = field(default_factory=list)
    # The latest rate-limit reset among the deliveries to retry (a Unix time), if any.
    not_before: float | None = None

    def counts(self) -> dict[str, int]:
        """The counts a task returns for its logs."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "suppressed": self.suppressed,
            "retry": len(self.retry_ids),
        }

    def countdown(self, retries: int, backoff: float, maximum: float) -> float:
        """Seconds before retrying: past the rate-limit reset, else exponential with full jitter."""
        if self.not_before is not None:
            wait_for = max(0.0, self.not_before - time.time())
            return min(MAX_COUNTDOWN, wait_for + random.uniform(0, 1))
        return random.uniform(0, min(maximum, backoff * (2**retries)))


@dataclass(frozen=True)
class _Outcome:
    """The result of one send, as the recorder needs it."""

    item: Claimed
    kind: str  # sent | failed | suppressed | retry
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    not_before: float | None = None


def _outcome(item: Claimed, future: Future[dict[str, Any] | None]) -> _Outcome:
    """Classify a finished send: permanent errors fail, everything else may be retried."""
    try:
        return _Outcome(item, "sent", extra=future.result() or {})
    except PermanentFailure as exc:
        return _Outcome(item, "failed", detail=str(exc))
    except Suppressed as exc:
        return _Outcome(item, "suppressed", detail=str(exc))
    except RetryLater as exc:
        return _Outcome(item, "retry", detail=str(exc), not_before=exc.not_before)
    except Exception as exc:  # an unexpected error: logged whole, retried, bounded by attempts
        log.exception("sending delivery %s failed unexpectedly", item.delivery_id)
        return _Outcome(item, "retry", detail=f"{type(exc).__name__}: {exc}")


def _record(
    session_factory: Callable[[], Any],
    outcomes: list[_Outcome],
    max_attempts: int,
    result: BatchResult,
) -> None:
    """Write a group of outcomes in one transaction and add them to the batch result."""
    if not outcomes:
        return
    sent = [o for o in outcomes if o.kind == "sent"]
    with session_factory() as session:
        # The common case in one statement; other stored columns take the row-by-row path.
        plain = [o for o in sent if set(o.extra) <= {"provider_message_id"}]
        rest = [o for o in sent if not set(o.extra) <= {"provider_message_id"}]
        finish_many(
            session, [(o.item.delivery_id, o.extra.get("provider_message_id")) for o in plain]
        )
        for o in rest:
            finish(session, o.item.delivery_id, **o.extra)
        result.sent += len(sent)
        for o in outcomes:
            delivery_id = o.item.delivery_id
            if o.kind == "sent":
                continue
            if o.kind == "failed":
                fail(session, delivery_id, o.detail)
                result.failed += 1
            elif o.kind == "suppressed":
                suppress(session, delivery_id, o.detail)
                result.suppressed += 1
            elif o.not_before is None and o.item.attempts >= max_attempts:
                fail(session, delivery_id, f"gave up after {o.item.attempts} attempts: {o.detail}")
                result.failed += 1
            else:
                # Waiting out a rate limit is not a failed attempt: it must not use up the bound.
                release(session, delivery_id, o.detail, refund=o.not_before is not None)
                result.retry_ids.append(delivery_id)
                if o.not_before is not None:
                    result.not_before = max(result.not_before or 0.0, o.not_before)


def deliver_concurrently(
    session_factory: Callable[[], Any],
    delivery_ids: Sequence[str],
    send: Sender,
    pool: Executor,
    *,
    lease_seconds: int,
    max_attempts: int,
) -> BatchResult:
    """Claim the batch, run `send` for each on `pool`, and record each outcome as it lands.

    Only claimed deliveries are sent, so a duplicated or redelivered task sends nothing twice.
    Outcomes are written every FLUSH_SECONDS, keeping the window in which a crash forgets a
    finished send short. If this thread is interrupted (a time limit), sends not yet started
    are released and running ones are awaited and recorded before the error propagates.
    """
    result = BatchResult()
    with session_factory() as session:
        won = claim_many(session, delivery_ids, lease_seconds)
    result.skipped = len(delivery_ids) - len(won)
    if not won:
        return result
    with session_factory() as session:
        claimed = load(session, won)
    futures = {pool.submit(send, item): item for item in claimed}
    pending: set[Future[Any]] = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=FLUSH_SECONDS)
            _record(session_factory, [_outcome(futures[f], f) for f in done], max_attempts, result)
    except BaseException:
        cancelled = [f for f in pending if f.cancel()]
        running = pending - set(cancelled)
        done, _ = wait(running)
        outcomes = [_outcome(futures[f], f) for f in done]
        outcomes += [_Outcome(futures[f], "retry", "interrupted before sending") for f in cancelled]
        _record(session_factory, outcomes, max_attempts, result)
        raise
    return result
