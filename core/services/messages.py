"""Notification titles and messages in Russian and English, filled from the stored snapshot."""

from __future__ import annotations

from typing import Any

# type -> locale -> (title, message); placeholders come from the notification's payload.
CATALOG: dict[str, dict[str, tuple[str, str]]] = {
    "welcome": {
        "ru": ("Добро пожаловать, {name}!", "Ваш аккаунт на рекламной бирже создан."),
        "en": ("Welcome, {name}!", "Your advertising marketplace account is ready."),
    },
    "new_campaign": {
        "ru": (
            "Новая заявка на размещение",
            "«{campaign_title}» в канале «{channel_name}» за {price} ₽ от {advertiser_name}.",
        ),
        "en": (
            "New placement request",
            '"{campaign_title}" in "{channel_name}" for {price} from {advertiser_name}.',
        ),
    },
    "campaign_accepted": {
        "ru": (
            "Заявка принята",
            "Канал «{channel_name}» принял вашу кампанию «{campaign_title}».",
        ),
        "en": (
            "Campaign accepted",
            '"{channel_name}" accepted your campaign "{campaign_title}".',
        ),
    },
    "campaign_rejected": {
        "ru": (
            "Заявка отклонена",
            "Канал «{channel_name}» отклонил вашу кампанию «{campaign_title}».",
        ),
        "en": (
            "Campaign rejected",
            '"{channel_name}" rejected your campaign "{campaign_title}".',
        ),
    },
    "campaign_completed": {
        "ru": (
            "Кампания завершена, выплата зачислена",
            "«{campaign_title}» завершена: на баланс зачислено {payout} ₽ (комиссия {fee} ₽).",
        ),
        "en": (
            "Campaign completed and paid out",
            '"{campaign_title}" is complete: {payout} credited to your balance (fee {fee}).',
        ),
    },
    "password_reset": {
        "ru": ("Запрошен сброс пароля", "Ссылка для нового пароля отправлена на вашу почту."),
        "en": ("Password reset requested", "A link to set a new password was sent to your email."),
    },
    "withdrawal_reminder": {
        "ru": (
            "Заявки на вывод ждут обработки",
            "{count} заявок на вывод ждут больше 24 часов, на сумму {total} ₽.",
        ),
        "en": (
            "Withdrawals awaiting processing",
            "{count} withdrawals have waited more than 24 hours, {total} in total.",
        ),
    },
}


def render(notification_type: str, locale: str, data: dict[str, Any]) -> tuple[str, str]:
    """The title and message of a notification type in the locale (Russian when unknown)."""
    by_locale = CATALOG[notification_type]
    title, message = by_locale.get(locale) or by_locale["ru"]
    return title.format(**data), message.format(**data)
