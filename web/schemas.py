"""Request and response schemas: they validate input and generate the OpenAPI document."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from core import i18n
from core.models.messengers import MESSENGERS
from core.notification_types import CHOOSABLE_CHANNELS
from core.services.money import format_minor
from core.services.users import BCRYPT_MAX_BYTES

MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("100000000")
# Notification seqs are stored in a 32-bit INTEGER column.
MAX_SEQ = 2**31 - 1


def two_places(value: Decimal) -> None:
    """Refuse amounts with more than two decimal places instead of silently rounding them."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValidationError("must have at most two decimal places")


def amount_range(value: Decimal) -> None:
    """Refuse amounts outside [MIN_AMOUNT, MAX_AMOUNT].

    Not validate.Range: apispec would document its Decimal bounds as the strings "0.01" and
    "100000000" under `minimum`/`maximum`, which OpenAPI requires to be numbers.
    """
    if not MIN_AMOUNT <= value <= MAX_AMOUNT:
        raise ValidationError(f"must be between {MIN_AMOUNT} and {MAX_AMOUNT}")


def bcrypt_sized(value: str) -> None:
    """Refuse passwords bcrypt cannot hash: longer than 72 bytes once UTF-8 encoded."""
    if len(value.encode()) > BCRYPT_MAX_BYTES:
        raise ValidationError(f"must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8")


def amount(**kwargs: Any) -> fields.Decimal:
    """A positive money amount given as a string or number, e.g. "1500.00"."""
    return fields.Decimal(
        as_string=True,
        validate=[amount_range, two_places],
        metadata={
            "type": "string",
            "pattern": r"^[0-9]{1,9}(\.[0-9]{1,2})?$",
            "description": f"from {MIN_AMOUNT} to {MAX_AMOUNT}, at most two decimal places",
            "example": "1500.00",
        },
        **kwargs,
    )


class Money(fields.Field):
    """An amount in minor units, serialized as a two-decimal string."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else format_minor(int(value))


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"description": "stable, machine-readable"})
    message = fields.String(required=True, metadata={"description": "human-readable"})
    details = fields.Raw(metadata={"description": "what was wrong, e.g. each invalid field"})


class ErrorOut(Schema):
    """Every error response, as web/errors.py sends it (SPEC.md)."""

    error = fields.Nested(ErrorDetail, required=True)


class RegisterIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(
        required=True,
        validate=[validate.Length(min=8, max=BCRYPT_MAX_BYTES), bcrypt_sized],
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf(["advertiser", "channel_owner"]))
    locale = fields.String(load_default="ru", validate=validate.OneOf(i18n.locales()))


class LoginIn(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=128))


class RefreshIn(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1))


class MessengerStateOut(Schema):
    linked = fields.Boolean()
    display_name = fields.String(
        allow_none=True, metadata={"description": "@username on Telegram, the VK page (id…)"}
    )
    linked_at = fields.DateTime(allow_none=True)


class LinksOut(Schema):
    """Where the user's Telegram and VK notifications go."""

    telegram = fields.Nested(MessengerStateOut)
    vk = fields.Nested(MessengerStateOut)


def messenger_states(links: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{messenger: {linked, display_name, linked_at}} from {messenger: MessengerLink}."""
    states = {}
    for channel in MESSENGERS:
        link = (links or {}).get(channel)
        states[channel] = {
            "linked": link is not None,
            "display_name": link.display_name if link else None,
            "linked_at": link.created_at if link else None,
        }
    return states


class LinksField(fields.Nested):
    """LinksOut of the object's `messenger_links`, or all unlinked when it carries none."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(LinksOut, dump_only=True, **kwargs)

    def serialize(self, attr: str, obj: Any, accessor: Any = None, **kwargs: Any) -> Any:
        # web/api/users.py hands over the user with its links loaded; a user fresh from
        # registration has none.
        states = messenger_states(getattr(obj, "messenger_links", None))
        return self._serialize(states, attr, obj, **kwargs)


class UserOut(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    locale = fields.String()
    balance = Money()
    created_at = fields.DateTime()
    email_status = fields.Method(
        "_email_status",
        dump_only=True,
        metadata={"description": "ok, or undeliverable (bounced): emails are then suppressed"},
    )
    email_undeliverable_at = fields.DateTime(allow_none=True)
    email_undeliverable_reason = fields.String(allow_none=True)
    links = LinksField(metadata={"description": "the linked Telegram and VK accounts"})

    def _email_status(self, obj: Any) -> str:
        return "ok" if obj.email_undeliverable_at is None else "undeliverable"


class UserPatchIn(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    locale = fields.String(validate=validate.OneOf(i18n.locales()))
    email = fields.Email(
        validate=validate.Length(max=254),
        metadata={"description": "a new address; needs `password`; clears undeliverable"},
    )
    password = fields.String(
        validate=validate.Length(min=1, max=128),
        load_only=True,
        metadata={"description": "the current password, required to change the email"},
    )


class PreferenceIn(Schema):
    type = fields.String(required=True, validate=validate.Length(min=1, max=40))
    channels = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=20)),
        values=fields.Boolean(),
        required=True,
        metadata={"description": f"channel → on/off; channels: {', '.join(CHOOSABLE_CHANNELS)}"},
    )


class PreferencesIn(Schema):
    preferences = fields.List(
        fields.Nested(PreferenceIn), required=True, validate=validate.Length(min=1, max=100)
    )


class PreferenceOut(Schema):
    type = fields.String()
    label = fields.String()
    required = fields.Boolean(metadata={"description": "money and security: cannot be turned off"})
    available = fields.List(fields.String(), metadata={"description": "channels offered"})
    channels = fields.Dict(keys=fields.String(), values=fields.Boolean())


class PreferencesOut(Schema):
    preferences = fields.List(fields.Nested(PreferenceOut))


class TokensOut(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()


class RegisterOut(TokensOut):
    user = fields.Nested(UserOut)


class AccessOut(Schema):
    access_token = fields.String()
    refresh_token = fields.String(
        metadata={"description": "the next refresh token; the one sent is now retired"}
    )
    token_type = fields.String()


class PasswordResetIn(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))


class PasswordResetConfirmIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    new_password = fields.String(
        required=True,
        validate=[validate.Length(min=8, max=BCRYPT_MAX_BYTES), bcrypt_sized],
    )


class PasswordIn(Schema):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=128))
    new_password = fields.String(
        required=True,
        validate=[validate.Length(min=8, max=BCRYPT_MAX_BYTES), bcrypt_sized],
    )


class ChannelIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    platform = fields.String(
        required=True, validate=validate.OneOf(["telegram", "vk", "youtube", "instagram", "other"])
    )
    url = fields.Url(required=True, validate=validate.Length(max=500))
    price = amount(required=True)


class ChannelOut(Schema):
    id = fields.String()
    owner_id = fields.String()
    name = fields.String()
    platform = fields.String()
    url = fields.String()
    price = Money()
    created_at = fields.DateTime()


class ChannelQuery(Schema):
    mine = fields.Boolean(load_default=False)


class CampaignIn(Schema):
    channel_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    content = fields.String(required=True, validate=validate.Length(min=1, max=10000))
    price = amount(load_default=None, allow_none=True)


class CampaignOut(Schema):
    id = fields.String()
    advertiser_id = fields.String()
    channel_id = fields.String()
    title = fields.String()
    content = fields.String()
    price = Money()
    fee = Money(allow_none=True)
    payout = Money(allow_none=True)
    status = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)


class CampaignQuery(Schema):
    status = fields.String(
        validate=validate.OneOf(["pending", "accepted", "rejected", "completed", "cancelled"])
    )


class WithdrawalIn(Schema):
    amount = amount(required=True)


class WithdrawalOut(Schema):
    id = fields.String()
    user_id = fields.String()
    amount = Money()
    status = fields.String()
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)


class DeliveryOut(Schema):
    channel = fields.String(
        metadata={"description": "inbox (the live push), email, telegram or vk"}
    )
    status = fields.String(
        metadata={
            "description": "pending, sending, sent, failed, suppressed (not sent: the address "
            "bounced, the account was unlinked) or skipped (no account linked on that channel)"
        }
    )
    provider_status = fields.String(
        allow_none=True,
        metadata={"description": "email only: processed, deferred, delivered, bounce, dropped"},
    )


class NotificationOut(Schema):
    id = fields.String()
    seq = fields.Integer()
    type = fields.String()
    title = fields.String()
    message = fields.String()
    campaign_id = fields.String(allow_none=True)
    data = fields.Dict(attribute="payload")
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)
    read = fields.Method("_is_read", dump_only=True)
    deliveries = fields.List(fields.Nested(DeliveryOut), attribute="timeline")

    def _is_read(self, obj: Any) -> bool:
        return obj.read_at is not None


class DeliveryDetailOut(DeliveryOut):
    attempts = fields.Integer()
    last_error = fields.String(attribute="error", allow_none=True)
    provider_message_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    claimed_at = fields.DateTime(allow_none=True, metadata={"description": "last attempt began"})
    finished_at = fields.DateTime(allow_none=True)


class NotificationDetailOut(NotificationOut):
    """One notification with its delivery timeline per channel."""

    deliveries = fields.List(fields.Nested(DeliveryDetailOut), attribute="timeline")


class NotificationQuery(Schema):
    unread_only = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before = fields.Integer(
        validate=validate.Range(min=1, max=MAX_SEQ), metadata={"description": "a seq"}
    )
    after_seq = fields.Integer(validate=validate.Range(min=0, max=MAX_SEQ))


class TelegramLinkOut(Schema):
    url = fields.String(
        metadata={"description": "https://t.me/<bot>?start=<one-time code>: opens the bot"}
    )
    expires_at = fields.DateTime(metadata={"description": "the code stops working then"})


class VkLinkOut(Schema):
    code = fields.String(
        metadata={
            "description": "one-time code the user sends to the community",
            "example": "K7MQ2XWR",
        }
    )
    url = fields.String(metadata={"description": "https://vk.me/<community>: its messages"})
    expires_at = fields.DateTime(metadata={"description": "the code stops working then"})


class TelegramReplyOut(Schema):
    """The bot's answer, which the Bot API performs; `{}` when there is nothing to say."""

    method = fields.String(metadata={"description": "sendMessage"})
    chat_id = fields.Integer()
    text = fields.String()


class WebhookOut(Schema):
    recorded = fields.Integer(metadata={"description": "events that changed a delivery"})


class CountOut(Schema):
    count = fields.Integer()


class BroadcastIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    message = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class BroadcastOut(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    recipients = fields.Integer(
        attribute="total", metadata={"description": "users when it was asked for"}
    )
    stored = fields.Integer(metadata={"description": "users whose inbox has it so far"})
    pushed = fields.Integer(metadata={"description": "connected users it was pushed to live"})
    title = fields.String()
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)


class AuditQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "the `next_before` of the previous page"},
    )


class AuditEventOut(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.String(allow_none=True)
    actor_email = fields.String(allow_none=True)
    action = fields.String(
        metadata={
            "description": "broadcast.create, withdrawal.process, withdrawal.reject, admin.create"
        }
    )
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    address = fields.String(allow_none=True, metadata={"description": "client address, or cli"})
    user_agent = fields.String(allow_none=True)
    details = fields.Dict()


class AuditPageOut(Schema):
    events = fields.List(fields.Nested(AuditEventOut))
    next_before = fields.Integer(allow_none=True)


class CreatedAdminOut(Schema):
    id = fields.String()
