"""Schemas of the admin stats and jobs endpoints (the scheduled jobs' part of the API)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

MONEY = {"type": "string", "example": "1500.00"}


class StatsQuery(Schema):
    days = fields.Integer(
        validate=validate.Range(min=1, max=366),
        metadata={"description": "also return the last N days as `series`, oldest first"},
    )


class UsersByRole(Schema):
    advertiser = fields.Integer()
    channel_owner = fields.Integer()
    admin = fields.Integer()
    total = fields.Integer()


class CampaignsByState(Schema):
    pending = fields.Integer()
    accepted = fields.Integer()
    rejected = fields.Integer()
    completed = fields.Integer()
    cancelled = fields.Integer()


class PendingWithdrawals(Schema):
    count = fields.Integer()
    amount = fields.String(metadata=MONEY)


class StatsDay(Schema):
    day = fields.String(metadata={"format": "date", "description": "the UTC day"})
    users = fields.Nested(UsersByRole)
    channels = fields.Integer()
    campaigns = fields.Nested(CampaignsByState)
    turnover = fields.String(
        metadata={**MONEY, "description": "prices of campaigns completed that day"}
    )
    fees = fields.String(metadata={**MONEY, "description": "platform fees earned that day"})
    withdrawals_pending = fields.Nested(PendingWithdrawals)
    computed_at = fields.String(metadata={"format": "date-time"})


class StatsOut(StatsDay):
    series = fields.List(
        fields.Nested(StatsDay), metadata={"description": "only with ?days=N: day by day"}
    )


class JobRunOut(Schema):
    period = fields.String(allow_none=True, metadata={"description": "null for manual runs"})
    trigger = fields.String(metadata={"description": "beat, retry, catch_up or manual"})
    status = fields.String(metadata={"description": "running, succeeded or failed"})
    attempts = fields.Integer()
    started_at = fields.String(metadata={"format": "date-time"})
    finished_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    duration_ms = fields.Integer(allow_none=True)
    result = fields.Dict(allow_none=True, metadata={"description": "what the run counted"})
    error = fields.String(allow_none=True)


class JobOut(Schema):
    name = fields.String()
    task = fields.String()
    schedule = fields.String()
    period = fields.String(metadata={"description": "start of the current period"})
    overdue = fields.Boolean(metadata={"description": "current period still without a success"})
    last_run = fields.Nested(JobRunOut, allow_none=True)
    last_success_at = fields.String(allow_none=True, metadata={"format": "date-time"})


class JobsOut(Schema):
    jobs = fields.List(fields.Nested(JobOut))
