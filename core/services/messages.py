"""Notification titles and messages in the recipient's locale, from the catalogues."""

from __future__ import annotations

from typing import Any

from core import i18n, notification_types
from core.notification_types import NotificationType, Plural


def localized(kind: NotificationType, locale: str, data: dict[str, Any]) -> dict[str, Any]:
    """The payload with its amounts written for the locale ("1 500,00 ₽")."""
    values = dict(data)
    for key in kind.money:
        if key in values:
            values[key] = i18n.format_money(values[key], locale)
    return values


def _text(locale: str, template: str | Plural, values: dict[str, Any]) -> str:
    """Translate one template (picking the plural form by its count) and fill it in."""
    if isinstance(template, Plural):
        count = int(values[template.count])
        translated = i18n.ngettext(locale, template.singular, template.plural, count)
    else:
        translated = i18n.gettext(locale, template)
    # Only the template is parsed: braces inside payload values are kept as they are.
    return translated.format_map(values)


def render(notification_type: str, locale: str, data: dict[str, Any]) -> tuple[str, str]:
    """The title and message of a notification type in the locale (the default when unknown)."""
    kind = notification_types.get(notification_type)
    locale = i18n.supported(locale)
    values = localized(kind, locale, data)
    return _text(locale, kind.title, values), _text(locale, kind.message, values)
