"""Request and response schemas: they validate input and generate the OpenAPI document."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from core.services.money import format_minor

MAX_AMOUNT = Decimal("100000000")


def two_places(value: Decimal) -> None:
    """Refuse amounts with more than two decimal places instead of silently rounding them."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValidationError("must have at most two decimal places")


def amount(**kwargs: Any) -> fields.Decimal:
    """A positive money amount given as a string or number, e.g. "1500.00"."""
    return fields.Decimal(
        as_string=True,
        validate=[validate.Range(min=Decimal("0.01"), max=MAX_AMOUNT), two_places],
        metadata={"type": "string", "example": "1500.00"},
        **kwargs,
    )


class Money(fields.Field):
    """An amount in minor units, serialized as a two-decimal string."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else format_minor(int(value))


class RegisterIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=8, max=128))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf(["advertiser", "channel_owner"]))
    locale = fields.String(load_default="ru", validate=validate.OneOf(["ru", "en"]))


class LoginIn(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=128))


class RefreshIn(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1))


class UserOut(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    locale = fields.String()
    balance = Money()
    created_at = fields.DateTime()


class TokensOut(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()


class RegisterOut(TokensOut):
    user = fields.Nested(UserOut)


class AccessOut(Schema):
    access_token = fields.String()
    token_type = fields.String()


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

    def _is_read(self, obj: Any) -> bool:
        return obj.read_at is not None


class NotificationQuery(Schema):
    unread_only = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before = fields.Integer(validate=validate.Range(min=1), metadata={"description": "a seq"})
    after_seq = fields.Integer(validate=validate.Range(min=0))


class CountOut(Schema):
    count = fields.Integer()


class BroadcastIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    message = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class BroadcastOut(Schema):
    recipients = fields.Integer()


class CreatedAdminOut(Schema):
    id = fields.String()
