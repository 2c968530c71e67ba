"""The Telegram channel: each linked chat's messages in order, within the Bot API's limits."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from itertools import groupby
from typing import Protocol

from core import probes
from core.services import delivery_engine as engine
from core.services import messenger_texts
from core.services.deliveries import Claimed
from worker.provider_errors import ProviderError
from worker.provider_limits import RateLimiter, telegram_limits, wait_for_slot

log = logging.getLogger(__name__)
# A refused token: the deliveries wait this long, pending, before they are tried again.
AUTH_RETRY_SECONDS = 60.0
# How long one send waits for a free slot before it goes back to the queue instead: a chat with
# a backlog (1 message/s) hands the rest to the task's retry rather than hold a thread.
MAX_SLOT_WAIT_SECONDS = 20.0
# A batch stops taking slots after this long: a chat's backlog (one message per 1.1 s) goes back
# to pending for the task's retry instead of outliving the task's time limit.
BATCH_SECONDS = 60.0
# A clear of the token's failure report costs a Redis call: at most this often per process.
CLEAR_EVERY_SECONDS = 30.0


class Bot(Protocol):
    """TelegramBot's send_message (worker/telegram.py), or the dev outbox's."""

    def send_message(
        self, chat_id: str, text: str, button_text: str | None, button_url: str | None
    ) -> str: ...


def read(error: ProviderError) -> engine.Outcome:
    """A provider error as the engine's outcome (shared by the VK adapter)."""
    if error.kind == "unlink":
        return engine.unlink(error.detail)
    if error.kind == "failed":
        return engine.failed(error.detail)
    if error.kind == "auth":
        # Every send fails until an operator fixes the token: keep them pending, not failed.
        return engine.retry(str(error), not_before=time.time() + AUTH_RETRY_SECONDS)
    wait = error.retry_after
    return engine.retry(str(error), not_before=None if wait is None else time.time() + wait)


class TokenHealth:
    """Tells deep health when the provider refuses our token, and when it works again."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.cleared_at = 0.0

    def refused(self, error: ProviderError) -> engine.Outcome:
        """Read a provider error; a refused token is reported before the deliveries wait."""
        if error.kind == "auth":
            log.error("%s refused our token: %s", self.channel, error.detail)
            probes.record_provider_failure(self.channel, error.detail)
            self.cleared_at = 0.0
        return read(error)

    def worked(self) -> None:
        """A send went through: clear a reported failure (not on every send: it costs Redis)."""
        now = time.monotonic()
        if now - self.cleared_at >= CLEAR_EVERY_SECONDS:
            self.cleared_at = now
            probes.clear_provider_failure(self.channel)


class TelegramAdapter:
    """One thread per chat, its notifications in seq order; the limits are shared in Redis."""

    channel = "telegram"
    needs_link = True
    paced = True

    def __init__(
        self,
        bot: Bot,
        limiter: RateLimiter,
        pool: Executor,
        frontend_url: str,
    ) -> None:
        self.bot = bot
        self.limiter = limiter
        self.pool = pool
        self.frontend_url = frontend_url
        self.health = TokenHealth(self.channel)

    def send(self, items: Sequence[Claimed]) -> Iterable[engine.Landed]:
        """Group by chat so each chat's 1 message/s is waited out in one place, in order."""
        ordered = sorted(items, key=lambda i: (i.link or "", i.notification.seq))
        groups = [list(g) for _, g in groupby(ordered, key=lambda i: i.link)]
        return engine.concurrently_grouped(self.pool, self.send_chat, groups)

    def send_chat(self, items: list[Claimed], emit: engine.Emit, stop: threading.Event) -> None:
        """Send one chat's messages in order; after an unlink or a wait the rest share it."""
        deadline = time.monotonic() + BATCH_SECONDS
        previous: engine.Outcome | None = None
        for item in items:
            if stop.is_set():
                return  # the engine releases what was not reported
            if previous is not None and previous.kind == "unlink":
                outcome = engine.suppressed(f"account unlinked: {previous.detail}")
            elif previous is not None and previous.kind == "retry":
                # A rate limit or an outage: the chat's later messages wait with it, in order.
                outcome = previous
            else:
                outcome = self.send_one(item, deadline)
            emit(item, outcome)
            previous = outcome

    def send_one(self, item: Claimed, batch_deadline: float) -> engine.Outcome:
        """Wait for the bot's and the chat's slot, then send."""
        chat = str(item.link)
        deadline = min(time.monotonic() + MAX_SLOT_WAIT_SECONDS, batch_deadline)
        if not wait_for_slot(self.limiter, telegram_limits(chat), deadline):
            return engine.retry("waiting for a send slot", not_before=time.time() + 1.0)
        notification = item.notification
        try:
            message_id = self.bot.send_message(
                chat,
                messenger_texts.telegram(notification),
                messenger_texts.open_label(item.user.locale),
                messenger_texts.link(self.frontend_url, notification),
            )
        except ProviderError as error:
            return self.health.refused(error)
        except Exception as exc:  # an unexpected bug must not pass for a send
            log.exception("Telegram send to chat %s failed unexpectedly", chat)
            return engine.retry(f"{type(exc).__name__}: {exc}")
        self.health.worked()
        return engine.sent(message_id)
