"""Local development without tokens: Telegram and VK messages written to the outbox folder."""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from worker.provider_errors import ProviderError

log = logging.getLogger(__name__)


class _Outbox:
    """Writes each message as `<channel>-<name>.json`; the same name overwrites, never adds."""

    channel = ""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, name: str, message: dict[str, Any]) -> str:
        """Write one message atomically; its file name is the message id."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{self.channel}-{Path(name).name}.json"
            partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            partial.write_text(json.dumps(message, ensure_ascii=False, indent=2))
            os.replace(partial, path)
        except OSError as exc:
            raise ProviderError("retry", f"outbox not writable: {exc}") from None
        log.info("%s message to %s written to %s", self.channel, message["to"], path)
        return f"outbox:{path.name}"


class OutboxTelegram(_Outbox):
    """TelegramBot's send_message, to a file."""

    channel = "telegram"

    def send_message(
        self,
        chat_id: str,
        text: str,
        button_text: str | None = None,
        button_url: str | None = None,
    ) -> str:
        """Write the message; named by its chat and button link (the notification)."""
        name = f"{chat_id}-{uuid.uuid5(uuid.NAMESPACE_URL, button_url or text).hex[:12]}"
        return self._write(name, {"to": chat_id, "text": text, "button": [button_text, button_url]})


class OutboxVk(_Outbox):
    """VkCommunity's send_message, to a file named by its random_id (a resend overwrites it)."""

    channel = "vk"

    def send_message(self, peer_id: str, text: str, random_id: int) -> str:
        """Write the message."""
        return self._write(str(random_id), {"to": peer_id, "text": text, "random_id": random_id})
