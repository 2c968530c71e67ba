"""Which adapter serves each channel in this worker process, and the engine run over them."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import Any

from core.db import session_scope
from core.services import delivery_engine as engine
from core.services import messengers
from core.services.deliveries import Claimed
from core.settings import get_settings
from worker.adapters.email import EmailAdapter
from worker.adapters.inbox import InboxAdapter
from worker.adapters.telegram import TelegramAdapter
from worker.adapters.vk import VkAdapter
from worker.mailer import get_mailer
from worker.messenger_outbox import OutboxTelegram, OutboxVk
from worker.metering import MeteredMailer
from worker.provider_limits import get_limiter
from worker.telegram import TelegramBot
from worker.vk import VkCommunity


@lru_cache(maxsize=1)
def pool() -> ThreadPoolExecutor:
    """The process's send threads, created after the worker forks and shared by every task."""
    return ThreadPoolExecutor(get_settings().EMAIL_CONCURRENCY, thread_name_prefix="send")


@lru_cache(maxsize=1)
def telegram_bot() -> Any:
    """The Bot API client, or the dev outbox when no TELEGRAM_BOT_TOKEN is set."""
    settings = get_settings()
    if not settings.TELEGRAM_BOT_TOKEN:
        return OutboxTelegram(settings.OUTBOX_DIR)
    return TelegramBot(
        settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_API_BASE, settings.SENDGRID_TIMEOUT_SECONDS
    )


@lru_cache(maxsize=1)
def vk_community() -> Any:
    """The VK API client for the community, or the dev outbox when no token is set."""
    settings = get_settings()
    if not settings.VK_COMMUNITY_TOKEN:
        return OutboxVk(settings.OUTBOX_DIR)
    return VkCommunity(
        settings.VK_COMMUNITY_TOKEN,
        settings.VK_API_BASE,
        settings.VK_API_VERSION,
        settings.SENDGRID_TIMEOUT_SECONDS,
    )


@lru_cache(maxsize=8)
def adapter(channel: str) -> engine.Adapter:
    """The channel's adapter, built on first use (after the fork) and kept for the process."""
    settings = get_settings()
    if channel == "inbox":
        return InboxAdapter()
    if channel == "email":
        return EmailAdapter(MeteredMailer(get_mailer()), settings, pool())
    if channel == "telegram":
        return TelegramAdapter(telegram_bot(), get_limiter(), pool(), settings.FRONTEND_URL)
    if channel == "vk":
        return VkAdapter(
            vk_community(), get_limiter(), pool(), settings.FRONTEND_URL, settings.VK_GROUP_ID
        )
    raise LookupError(f"no adapter for the channel {channel!r}")


def forget_account(session: Any, item: Claimed, reason: str) -> None:
    """A provider refused the chat for good: unlink it, so later notifications skip it."""
    if item.link:
        messengers.unlink_chat(session, item.channel, item.link, reason)


def deliver(channel: str, delivery_ids: Sequence[str]) -> engine.BatchResult:
    """Run one batch of a channel's deliveries through the engine."""
    settings = get_settings()
    return engine.deliver(
        session_scope,
        delivery_ids,
        adapter(channel),
        lease_seconds=settings.DELIVERY_LEASE_SECONDS,
        max_attempts=settings.DELIVERY_MAX_ATTEMPTS,
        on_unlink=forget_account,
        one_statement_factory=partial(session_scope, autocommit=True),
    )
