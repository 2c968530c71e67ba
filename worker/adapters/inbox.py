"""The inbox channel's live push: each notification emitted to its user's sockets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from core.services import delivery_engine as engine
from core.services.deliveries import Claimed
from core.services.notifications import to_event
from worker.emitter import emit_to_user
from worker.metering import record_emit, record_emit_error


class InboxAdapter:
    """Publishes to Flask-SocketIO's Redis channel, which every web process relays."""

    channel = "inbox"
    needs_link = False
    paced = False

    def send(self, items: Sequence[Claimed]) -> Iterator[engine.Landed]:
        """Emit in order; after a failed publish the rest wait for the retry (Redis is away)."""
        for index, item in enumerate(items):
            try:
                emit_to_user(item.user.id, "notification", to_event(item.notification))
            except Exception as exc:
                record_emit_error(item.notification, exc)
                detail = f"{type(exc).__name__}: {exc}"
                for rest in items[index:]:
                    yield rest, engine.retry(detail)
                return
            record_emit(item.notification, item.user.id)
            yield item, engine.sent()
