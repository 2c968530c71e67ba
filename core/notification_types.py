"""Every notification type, declared once: who gets it, on which channels, required or not, texts.

The notify service, the preferences API, the settings page and the renderers read this module;
nothing else lists types. Adding a type is an entry here, its email templates when it has the
email channel (`email_templates/<name>.*`), and its translations (`make messages`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# `inbox` is the stored notification and its live push: always on, never a preference.
CHANNELS = ("inbox", "email", "telegram", "vk")
CHOOSABLE_CHANNELS = ("email", "telegram", "vk")
ROLES = frozenset({"advertiser", "channel_owner", "admin"})
EVERYONE = ROLES
SELF_SERVICE = frozenset({"advertiser", "channel_owner"})


def N_(message: str) -> str:
    """Mark a message for the catalogues (`make messages`); it is translated when rendered."""
    return message


@dataclass(frozen=True)
class Plural:
    """A counted message: the payload value `count` picks the locale's plural form."""

    singular: str
    plural: str
    count: str


def Np_(singular: str, plural: str, count: str) -> Plural:
    """Mark a counted message for the catalogues; `count` names the payload value to count."""
    return Plural(singular, plural, count)


@dataclass(frozen=True)
class NotificationType:
    """One kind of notification and everything the platform needs to know to send it."""

    name: str
    # In English, for the settings page and the API documentation.
    label: str
    audience: frozenset[str]
    # The channels it goes out on unless the recipient chose otherwise; a user may turn off
    # (and on again) these and only these.
    channels: tuple[str, ...]
    # Money and security: the user cannot turn any of its channels off.
    required: bool
    # Title and message templates (English msgids with `{placeholders}` from the payload).
    title: str
    message: str | Plural
    # Payload values that are amounts, written in the recipient's locale ("1 500,00 ₽").
    money: tuple[str, ...] = field(default=())

    @property
    def has_email(self) -> bool:
        """Whether it has email templates (`email_templates/<name>.*`)."""
        return "email" in self.channels

    @property
    def choosable(self) -> tuple[str, ...]:
        """The channels a recipient may turn off and on for this type."""
        return tuple(c for c in self.channels if c in CHOOSABLE_CHANNELS)

    def is_for(self, role: str) -> bool:
        """Whether users of this role ever receive it."""
        return role in self.audience


_MESSENGERS = ("telegram", "vk")
_EVERYWHERE = ("inbox", "email", *_MESSENGERS)

_TYPES = (
    NotificationType(
        name="welcome",
        label=N_("Welcome after registering"),
        audience=SELF_SERVICE,
        channels=("email",),
        required=False,
        title=N_("Welcome, {name}!"),
        message=N_("Your advertising marketplace account is ready."),
    ),
    NotificationType(
        name="new_campaign",
        label=N_("A new placement request on my channel"),
        audience=frozenset({"channel_owner"}),
        channels=_EVERYWHERE,
        required=False,
        title=N_("New placement request"),
        message=N_('"{campaign_title}" in "{channel_name}" for {price} from {advertiser_name}.'),
        money=("price",),
    ),
    NotificationType(
        name="campaign_accepted",
        label=N_("My campaign was accepted"),
        audience=frozenset({"advertiser"}),
        channels=_EVERYWHERE,
        required=False,
        title=N_("Campaign accepted"),
        message=N_('"{channel_name}" accepted your campaign "{campaign_title}".'),
    ),
    NotificationType(
        name="campaign_rejected",
        label=N_("My campaign was rejected"),
        audience=frozenset({"advertiser"}),
        channels=_EVERYWHERE,
        required=False,
        title=N_("Campaign rejected"),
        message=N_('"{channel_name}" rejected your campaign "{campaign_title}".'),
    ),
    NotificationType(
        name="campaign_completed",
        label=N_("A campaign was completed and paid out"),
        audience=frozenset({"channel_owner"}),
        channels=_EVERYWHERE,
        required=True,
        title=N_("Campaign completed and paid out"),
        message=N_(
            '"{campaign_title}" is complete: {payout} credited to your balance (fee {fee}).'
        ),
        money=("payout", "fee", "price"),
    ),
    NotificationType(
        name="withdrawal_processed",
        label=N_("My withdrawal was paid"),
        audience=frozenset({"channel_owner"}),
        channels=_EVERYWHERE,
        required=True,
        title=N_("Withdrawal paid"),
        message=N_("Your withdrawal of {amount} has been processed."),
        money=("amount",),
    ),
    NotificationType(
        name="withdrawal_rejected",
        label=N_("My withdrawal was rejected"),
        audience=frozenset({"channel_owner"}),
        channels=_EVERYWHERE,
        required=True,
        title=N_("Withdrawal rejected"),
        message=N_("Your withdrawal of {amount} was rejected; the amount is back on your balance."),
        money=("amount",),
    ),
    NotificationType(
        name="withdrawal_reminder",
        label=N_("Withdrawals waiting for more than 24 hours"),
        audience=frozenset({"admin"}),
        channels=("inbox", "email", "telegram"),
        required=False,
        title=N_("Withdrawals awaiting processing"),
        message=Np_(
            "{count} withdrawal has waited more than 24 hours, {total} in total.",
            "{count} withdrawals have waited more than 24 hours, {total} in total.",
            "count",
        ),
        money=("total",),
    ),
    NotificationType(
        name="broadcast",
        label=N_("Announcements from the marketplace"),
        audience=EVERYONE,
        channels=("inbox",),
        required=False,
        # A broadcast's title and message are the admin's own words.
        title="",
        message="",
    ),
    NotificationType(
        name="password_reset",
        label=N_("Password reset links"),
        audience=EVERYONE,
        channels=("email",),
        required=True,
        title=N_("Password reset requested"),
        message=N_("A link to set a new password was sent to your email."),
    ),
)

TYPES: dict[str, NotificationType] = {t.name: t for t in _TYPES}


def get(name: str) -> NotificationType:
    """The type called `name`; KeyError for a name nobody declared."""
    return TYPES[name]


def for_role(role: str) -> list[NotificationType]:
    """The types users of this role receive, in declaration order."""
    return [t for t in _TYPES if t.is_for(role)]


def with_email() -> tuple[str, ...]:
    """The names of the types that have email templates."""
    return tuple(t.name for t in _TYPES if t.has_email)
