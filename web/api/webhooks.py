"""Callbacks from providers: SendGrid's Event Webhook."""

from __future__ import annotations

import json

from flask import current_app, request
from flask_smorest import Blueprint

from core.db import session_scope
from core.services import email_events
from core.services.errors import DomainError
from core.services.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from web.schemas import WebhookOut

blp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks", description="Webhooks")


@blp.route("/sendgrid", methods=["POST"])
@blp.response(200, WebhookOut)
def sendgrid_events() -> dict[str, int]:
    """Record delivered / bounce / dropped / deferred from a signed post; repeats change nothing."""
    body = request.get_data(cache=False)
    email_events.check(
        current_app.config["SETTINGS"].SENDGRID_WEBHOOK_PUBLIC_KEY,
        request.headers.get(SIGNATURE_HEADER),
        request.headers.get(TIMESTAMP_HEADER),
        body,
    )
    try:
        events = json.loads(body)
    except ValueError:
        raise DomainError("request body is not valid JSON", code="invalid_json") from None
    with session_scope() as session:
        return {"recorded": email_events.record(session, events)}
