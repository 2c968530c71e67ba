"""Notification titles and messages in Russian and English."""

from __future__ import annotations

import pytest

from core.services import messages

# A snapshot holding every placeholder any message uses.
DATA = {
    "name": "Ann",
    "campaign_title": "Spring sale",
    "channel_name": "Tech News",
    "advertiser_name": "Acme",
    "price": "1500.00",
    "payout": "1350.00",
    "fee": "150.00",
    "count": 3,
    "total": "4500.00",
}


@pytest.mark.parametrize("notification_type", sorted(messages.CATALOG))
def test_every_type_renders_in_russian_and_english(notification_type):
    ru = messages.render(notification_type, "ru", DATA)
    en = messages.render(notification_type, "en", DATA)

    assert all(ru) and all(en)
    assert ru != en
    assert "{" not in "".join(ru + en)


@pytest.mark.parametrize(
    ("locale", "title"),
    [("ru", "Новая заявка на размещение"), ("en", "New placement request")],
)
def test_titles_follow_the_locale(locale, title):
    rendered_title, message = messages.render("new_campaign", locale, DATA)

    assert rendered_title == title
    assert "Spring sale" in message and "Tech News" in message and "1500.00" in message


def test_an_unknown_locale_falls_back_to_russian():
    assert messages.render("welcome", "de", DATA) == messages.render("welcome", "ru", DATA)


def test_payload_values_are_not_reinterpreted_as_placeholders():
    title, _ = messages.render("welcome", "en", {"name": "{__class__}"})

    assert title == "Welcome, {__class__}!"
