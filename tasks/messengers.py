"""Thin tasks for the messengers beyond notifications: VK's replies, Telegram's webhook."""

from __future__ import annotations

import logging
import time

from celery import Task

from celeryconfig import TASK_RETRY_POLICY
from core.settings import get_settings
from tasks.notifications import TRANSIENT
from worker import delivery
from worker.celery_app import app
from worker.messenger_outbox import OutboxTelegram
from worker.provider_errors import ProviderError
from worker.provider_limits import get_limiter, vk_limits, wait_for_slot
from worker.vk import random_id_for

log = logging.getLogger(__name__)
# How long a reply waits for the community's send slot before the task retries.
SLOT_WAIT_SECONDS = 10.0


@app.task(name="messengers.vk_reply", bind=True, autoretry_for=TRANSIENT, **TASK_RETRY_POLICY)
def vk_reply(self: Task, peer_id: str, text: str) -> str | None:
    """The community's answer to a user who sent it a link code (sent by workers, not web)."""
    limits = vk_limits(get_settings().VK_GROUP_ID or "default")
    if not wait_for_slot(get_limiter(), limits, time.monotonic() + SLOT_WAIT_SECONDS):
        raise self.retry(countdown=1.0)
    try:
        # The task's id names the reply: a retried task is dropped by VK, not shown twice.
        return delivery.vk_community().send_message(peer_id, text, random_id_for(self.request.id))
    except ProviderError as error:
        if error.kind == "retry":
            raise self.retry(countdown=error.retry_after or 2.0) from None
        log.warning("VK reply to %s not sent: %s", peer_id, error)
        return None


@app.task(name="messengers.telegram_set_webhook")
def telegram_set_webhook(url: str) -> str:
    """Point the bot's updates at `url` with the webhook secret (`flask telegram-set-webhook`)."""
    bot = delivery.telegram_bot()
    if isinstance(bot, OutboxTelegram):
        return "no TELEGRAM_BOT_TOKEN: nothing registered"
    bot.set_webhook(url, get_settings().TELEGRAM_WEBHOOK_SECRET or "")
    return f"webhook set to {url}"
