"""Every email template renders in every locale, escapes user input, keeps subjects on one line."""

from __future__ import annotations

import re

import pytest

from core.services import emails

FRONTEND = "https://app.example.test"
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


def render(kind: str, locale: str, **changes: object) -> emails.RenderedEmail:
    """Render `kind` with the sample snapshot, some values replaced."""
    payload = {**emails.SAMPLES[kind], **changes}
    return emails.render(kind, locale, payload, recipient_name="Анна", frontend_url=FRONTEND)


@pytest.mark.parametrize("locale", emails.LOCALES)
@pytest.mark.parametrize("kind", emails.KINDS)
def test_every_template_renders_three_parts(kind: str, locale: str) -> None:
    """Subject, text and HTML exist, in the locale, with CSS inlined and front-end links."""
    email = render(kind, locale)
    assert email.subject and "\n" not in email.subject and "\r" not in email.subject
    assert email.text.strip() and email.html.strip()
    assert f'<html lang="{locale}">' in email.html
    assert "<style" not in email.html, "CSS must be inlined for mail clients"
    assert 'style="' in email.html
    links = re.findall(r'href="([^"]+)"', email.html)
    assert links and all(link.startswith(FRONTEND + "/") for link in links)
    assert FRONTEND + "/" in email.text
    cyrillic = bool(re.search("[а-яА-Я]", email.text.replace("Анна", "")))
    sample_text_is_russian = any(
        re.search("[а-яА-Я]", str(v)) and str(v) in email.text
        for v in emails.SAMPLES[kind].values()
    )
    if locale == "ru":
        assert cyrillic
    elif not sample_text_is_russian:
        assert not cyrillic


def test_templates_exist_for_every_kind_and_locale() -> None:
    """One subject, text and HTML file per email per locale, and one base layout per format."""
    root = emails.TEMPLATE_DIR
    assert (root / "_base.html").is_file() and (root / "_base.txt").is_file()
    for locale in emails.LOCALES:
        for kind in emails.KINDS:
            for suffix in (".subject.txt", ".txt", ".html"):
                assert (root / locale / f"{kind}{suffix}").is_file(), (locale, kind, suffix)


@pytest.mark.parametrize("locale", emails.LOCALES)
def test_hostile_titles_arrive_as_text(locale: str) -> None:
    """HTML in a campaign title or a name is escaped in the HTML part, kept as is in the text."""
    email = render(
        "new_campaign", locale, campaign_title=HOSTILE, advertiser_name="<img src=x onerror=1>"
    )
    assert "<script>" not in email.html and "<b>bold</b>" not in email.html
    assert "<img" not in email.html
    assert "&lt;script&gt;" in email.html and "&amp;" in email.html
    assert HOSTILE in email.text
    assert HOSTILE in email.subject


@pytest.mark.parametrize("locale", emails.LOCALES)
@pytest.mark.parametrize("kind", ["new_campaign", "campaign_accepted", "campaign_completed"])
def test_subjects_never_carry_a_line_break(kind: str, locale: str) -> None:
    """A title with CR/LF cannot add a header: the subject is collapsed to one line."""
    email = render(kind, locale, campaign_title="Sale\r\nBcc: victim@example.com\n\rX")
    assert "\r" not in email.subject and "\n" not in email.subject
    assert "Sale Bcc: victim@example.com X" in email.subject


def test_welcome_subject_with_a_name_that_has_line_breaks() -> None:
    """The recipient's name is user input too."""
    email = emails.render(
        "welcome", "en", {}, recipient_name="Eve\r\nBcc: x@y.z", frontend_url=FRONTEND
    )
    assert email.subject == "Welcome to the advertising marketplace, Eve Bcc: x@y.z!"


def test_amounts_come_from_the_snapshot_formatted_for_the_locale() -> None:
    """Stored decimal strings become "13 500,00 ₽" in Russian and "13,500.00 RUB" in English."""
    ru = render("campaign_completed", "ru")
    en = render("campaign_completed", "en")
    assert "13\xa0500,00\xa0₽" in ru.text and "1\xa0500,00\xa0₽" in ru.text
    assert "13,500.00\xa0RUB" in en.text and "1,500.00\xa0RUB" in en.text
    assert "13&nbsp;500,00&nbsp;₽" in ru.html


def test_unknown_locale_falls_back_to_russian() -> None:
    """Russian is the default language."""
    assert render("welcome", "de").subject == render("welcome", "ru").subject


def test_links_quote_ids_from_the_snapshot() -> None:
    """A strange id cannot break out of the link."""
    email = render("campaign_accepted", "en", campaign_id='x"/../<y>')
    assert f"{FRONTEND}/campaigns/x%22%2F..%2F%3Cy%3E" in email.html


def test_a_snapshot_without_a_needed_value_is_an_error() -> None:
    """A missing amount is refused loudly instead of sending an email with a blank."""
    payload = dict(emails.SAMPLES["campaign_completed"])
    del payload["payout"]
    with pytest.raises(ValueError, match="payout"):
        emails.render(
            "campaign_completed", "en", payload, recipient_name="A", frontend_url=FRONTEND
        )


def test_unknown_kind_is_refused() -> None:
    """Broadcasts and rejections have no email."""
    with pytest.raises(ValueError):
        emails.render("broadcast", "en", {}, recipient_name="A", frontend_url=FRONTEND)
