"""Notification titles and messages from the catalogues: every type, locale, plural and amount."""

from __future__ import annotations

import pytest

from core import i18n, notification_types
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
    "amount": "1500.00",
    "withdrawal_id": "w1",
}
# Types whose words are the sender's own (an admin's broadcast).
VERBATIM = {"broadcast"}


@pytest.mark.parametrize("notification_type", sorted(set(notification_types.TYPES) - VERBATIM))
@pytest.mark.parametrize("locale", i18n.locales())
def test_every_type_renders_in_every_locale(notification_type, locale):
    title, message = messages.render(notification_type, locale, DATA)

    assert title and message
    assert "{" not in title + message
    if locale != "en":
        english = messages.render(notification_type, "en", DATA)
        assert (title, message) != english, "a translation is missing"


# The plural and money table of the closing note, as rendered.
PLURALS = {
    "ru": {
        1: "1 заявка на вывод ждёт больше 24 часов, на сумму 1\xa0500,00\xa0₽.",
        2: "2 заявки на вывод ждут больше 24 часов, на сумму 1\xa0500,00\xa0₽.",
        5: "5 заявок на вывод ждут больше 24 часов, на сумму 1\xa0500,00\xa0₽.",
        21: "21 заявка на вывод ждёт больше 24 часов, на сумму 1\xa0500,00\xa0₽.",
        0: "0 заявок на вывод ждут больше 24 часов, на сумму 1\xa0500,00\xa0₽.",
    },
    "en": {
        1: "1 withdrawal has waited more than 24 hours, RUB\xa01,500.00 in total.",
        2: "2 withdrawals have waited more than 24 hours, RUB\xa01,500.00 in total.",
        5: "5 withdrawals have waited more than 24 hours, RUB\xa01,500.00 in total.",
        21: "21 withdrawals have waited more than 24 hours, RUB\xa01,500.00 in total.",
        0: "0 withdrawals have waited more than 24 hours, RUB\xa01,500.00 in total.",
    },
}


@pytest.mark.parametrize("locale", sorted(PLURALS))
@pytest.mark.parametrize("count", [1, 2, 5, 21, 0])
def test_counted_messages_take_the_locale_s_plural_form(locale, count):
    _, message = messages.render("withdrawal_reminder", locale, {"count": count, "total": "1500"})

    assert message == PLURALS[locale][count]


@pytest.mark.parametrize(
    ("locale", "amount", "written"),
    [
        ("ru", "15000.00", "15\xa0000,00\xa0₽"),
        ("ru", "0.50", "0,50\xa0₽"),
        ("en", "15000.00", "RUB\xa015,000.00"),
        ("en", "1234567.89", "RUB\xa01,234,567.89"),
    ],
)
def test_amounts_are_written_for_the_locale(locale, amount, written):
    assert i18n.format_money(amount, locale) == written
    _, message = messages.render("new_campaign", locale, {**DATA, "price": amount})
    assert written in message


@pytest.mark.parametrize(
    ("locale", "title"),
    [("ru", "Новая заявка на размещение"), ("en", "New placement request")],
)
def test_titles_follow_the_locale(locale, title):
    rendered_title, message = messages.render("new_campaign", locale, DATA)

    assert rendered_title == title
    assert "Spring sale" in message and "Tech News" in message


def test_an_unknown_locale_falls_back_to_russian():
    assert messages.render("welcome", "de", DATA) == messages.render("welcome", "ru", DATA)


def test_payload_values_are_not_reinterpreted_as_placeholders():
    title, _ = messages.render("welcome", "en", {"name": "{__class__}"})

    assert title == "Welcome, {__class__}!"


def test_an_amount_that_is_not_a_number_is_shown_as_it_is():
    assert i18n.format_money("about 100", "ru") == "about 100"
