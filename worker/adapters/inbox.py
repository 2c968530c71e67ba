"""The inbox channel's live push: each notification emitted to its user's sockets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from core.services import delivery_engine as engine
from core.services.deliveries import Claimed
from core.services.notifications import to_event
from worker.emitter import emit_to_user, emitting_together
from worker.metering import record_emit, record_emit_error


class InboxAdapter:
    """Publishes to Flask-SocketIO's Redis channel, which every web process relays."""

    channel = "inbox"
    needs_link = False
    paced = False

    def send(self, items: Sequence[Claimed]) -> Iterator[engine.Landed]:
        """Emit the batch in order in one round trip; if it fails, all of it waits for the retry.

        A failed pipeline may have published some of its messages; sending them again is
        safe, since clients drop a notification whose seq they already have.
        """
        try:
            with emitting_together():
                for item in items:
                    emit_to_user(item.user.id, "notification", to_event(item.notification))
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            for item in items:
                record_emit_error(item.notification, exc)
                yield item, engine.retry(detail)
            return
        for item in items:
            record_emit(item.notification, item.user.id)
            yield item, engine.sent()
