"""Every model, imported so that `Base.metadata` knows all tables."""

from core.models.audit import AuditEvent
from core.models.base import Base
from core.models.broadcasts import Broadcast
from core.models.campaigns import Campaign
from core.models.channels import Channel
from core.models.email_events import SeenEmailEvent
from core.models.jobs import JobRun
from core.models.logins import Login
from core.models.messengers import LinkCode, MessengerLink
from core.models.notifications import Delivery, Notification
from core.models.reminders import WithdrawalReminder
from core.models.stats import PlatformStats
from core.models.users import User
from core.models.withdrawals import Withdrawal

__all__ = [
    "AuditEvent",
    "Base",
    "Broadcast",
    "Campaign",
    "Channel",
    "Delivery",
    "JobRun",
    "LinkCode",
    "Login",
    "MessengerLink",
    "Notification",
    "PlatformStats",
    "SeenEmailEvent",
    "User",
    "Withdrawal",
    "WithdrawalReminder",
]
