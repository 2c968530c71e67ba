"""The VK channel: community messages, each with a random_id VK uses to drop a resend."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from typing import Protocol

from core.services import delivery_engine as engine
from core.services import messenger_texts
from core.services.deliveries import Claimed
from worker.adapters.telegram import MAX_SLOT_WAIT_SECONDS, TokenHealth
from worker.provider_errors import ProviderError
from worker.provider_limits import RateLimiter, vk_limits, wait_for_slot
from worker.vk import random_id_for

log = logging.getLogger(__name__)


class Community(Protocol):
    """VkCommunity's send_message (worker/vk.py), or the dev outbox's."""

    def send_message(self, peer_id: str, text: str, random_id: int) -> str: ...


class VkAdapter:
    """Sends under the community's calls-per-second limit, shared by every worker in Redis."""

    channel = "vk"
    needs_link = True
    paced = True

    def __init__(
        self,
        community: Community,
        limiter: RateLimiter,
        pool: Executor,
        frontend_url: str,
        group_id: int | None,
    ) -> None:
        self.community = community
        self.limiter = limiter
        self.pool = pool
        self.frontend_url = frontend_url
        self.limits = vk_limits(group_id or "default")
        self.health = TokenHealth(self.channel)

    def send(self, items: Sequence[Claimed]) -> Iterable[engine.Landed]:
        """Every message in flight at once; the limiter paces them."""
        return engine.concurrently(self.pool, self.send_one, items)

    def send_one(self, item: Claimed) -> engine.Outcome:
        """Wait for the community's slot, then send with the delivery's own random_id."""
        deadline = time.monotonic() + MAX_SLOT_WAIT_SECONDS
        if not wait_for_slot(self.limiter, self.limits, deadline):
            return engine.retry("waiting for a send slot", not_before=time.time() + 1.0)
        text = messenger_texts.vk(item.notification, self.frontend_url, item.user.locale)
        try:
            # The same delivery always carries the same random_id: a resend after a crash
            # is dropped by VK, not shown twice.
            message_id = self.community.send_message(
                str(item.link), text, random_id_for(item.delivery_id)
            )
        except ProviderError as error:
            return self.health.refused(error)
        except Exception as exc:  # an unexpected bug must not pass for a send
            log.exception("VK send to peer %s failed unexpectedly", item.link)
            return engine.retry(f"{type(exc).__name__}: {exc}")
        self.health.worked()
        return engine.sent(message_id)
