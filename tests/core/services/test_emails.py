"""One set of templates renders every email in every locale, escaped, with one-line subjects."""

from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from core import i18n, notification_types
from core.services import emails

FRONTEND = "https://app.example.test"
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
UNSUBSCRIBE_LABEL = {"ru": "Отписаться от этих писем", "en": "Unsubscribe from these emails"}


def render(kind: str, locale: str, **changes: object) -> emails.RenderedEmail:
    """Render `kind` with the sample snapshot, some values replaced."""
    payload = {**emails.SAMPLES[kind], **changes}
    return emails.render(kind, locale, payload, recipient_name="Анна", frontend_url=FRONTEND)


def visible_text(markup: str) -> str:
    """What a reader sees of an HTML part: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


@pytest.mark.parametrize("locale", emails.locales())
@pytest.mark.parametrize("kind", emails.kinds())
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
    for part in (email.subject, email.text, email.html):
        # Template syntax or a gettext placeholder left over means a broken template or catalogue.
        assert "{{" not in part and "{%" not in part and "%(" not in part
    cyrillic = bool(re.search("[а-яА-Я]", email.text.replace("Анна", "")))
    sample_text_is_russian = any(
        re.search("[а-яА-Я]", str(v)) and str(v) in email.text
        for v in emails.SAMPLES[kind].values()
    )
    if locale == "ru":
        assert cyrillic
    elif not sample_text_is_russian:
        assert not cyrillic


@pytest.mark.parametrize("kind", emails.kinds())
def test_russian_emails_have_no_english_left(kind: str) -> None:
    """Every text of the Russian render is translated: only sample values and URLs are Latin."""
    email = emails.render_sample(kind, "ru", FRONTEND)
    samples = [str(v) for v in emails.SAMPLES[kind].values()]

    def leftover(text: str) -> list[str]:
        text = re.sub(r"https?://\S+", " ", text)
        for value in samples:
            text = text.replace(value, " ")
        return LATIN_WORD.findall(text)

    assert leftover(email.subject) == []
    assert leftover(email.text) == []
    assert leftover(visible_text(email.html)) == []


def test_one_set_of_templates_for_every_kind() -> None:
    """One subject, text and HTML file per email, shared by every locale, and no locale folders."""
    root = emails.TEMPLATE_DIR
    for name in ("_base.html", "_base.txt", "_footer.html", "_footer.txt"):
        assert (root / name).is_file(), name
    for kind in emails.kinds():
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (root / f"{kind}{suffix}").is_file(), (kind, suffix)
    assert [p.name for p in root.iterdir() if p.is_dir()] == []


def test_kinds_and_locales_come_from_the_registry_and_the_catalogues() -> None:
    """The kinds are the types with an email; the locales, every catalogue folder."""
    assert emails.kinds() == notification_types.with_email()
    assert emails.kinds() == emails.KINDS
    assert emails.locales() == i18n.locales() and emails.locales()[0] == "ru"
    assert emails.locales() == emails.LOCALES
    assert {"withdrawal_processed", "withdrawal_rejected"} <= set(emails.kinds())
    assert set(emails.SAMPLES) == set(emails.kinds())


@pytest.mark.parametrize("locale", emails.locales())
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


@pytest.mark.parametrize("locale", emails.locales())
def test_a_hostile_recipient_name_is_escaped_inside_translated_text(locale: str) -> None:
    """Values put into a translated sentence are escaped like any other in the HTML part."""
    email = emails.render("welcome", locale, {}, recipient_name="<b>Eve</b>", frontend_url=FRONTEND)
    assert "<b>Eve</b>" not in email.html and "&lt;b&gt;Eve&lt;/b&gt;" in email.html
    assert "<b>Eve</b>" in email.text


@pytest.mark.parametrize("locale", emails.locales())
@pytest.mark.parametrize(
    "kind", ["new_campaign", "campaign_accepted", "campaign_rejected", "campaign_completed"]
)
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
    """Stored decimal strings become "1 500,00 ₽" in Russian and "RUB 1,500.00" in English."""
    ru = render("withdrawal_processed", "ru")
    en = render("withdrawal_processed", "en")
    assert "1\xa0500,00\xa0₽" in ru.subject and "1\xa0500,00\xa0₽" in ru.text
    assert "RUB\xa01,500.00" in en.subject and "RUB\xa01,500.00" in en.text
    assert "1&nbsp;500,00&nbsp;₽" in ru.html and "RUB&nbsp;1,500.00" in en.html
    completed = render("campaign_completed", "ru")
    assert "13\xa0500,00\xa0₽" in completed.text and "13&nbsp;500,00&nbsp;₽" in completed.html
    assert "RUB\xa013,500.00" in render("campaign_completed", "en").text


@pytest.mark.parametrize(
    ("count", "line"),
    [
        (1, "1 заявка на вывод ждёт больше 24 часов."),
        (2, "2 заявки на вывод ждут больше 24 часов."),
        (5, "5 заявок на вывод ждут больше 24 часов."),
        (11, "11 заявок на вывод ждут больше 24 часов."),
        (21, "21 заявка на вывод ждёт больше 24 часов."),
        (22, "22 заявки на вывод ждут больше 24 часов."),
        (0, "0 заявок на вывод ждут больше 24 часов."),
    ],
)
def test_the_withdrawal_count_takes_the_russian_plural_form(count: int, line: str) -> None:
    """Russian has three forms: 1 (21, 31…) заявка, 2–4 заявки, 0 and 5–20 заявок."""
    assert line in render("withdrawal_reminder", "ru", count=count).text.splitlines()


@pytest.mark.parametrize(
    ("count", "line"),
    [
        (1, "1 withdrawal has waited more than 24 hours."),
        (2, "2 withdrawals have waited more than 24 hours."),
        (0, "0 withdrawals have waited more than 24 hours."),
    ],
)
def test_the_withdrawal_count_takes_the_english_plural_form(count: int, line: str) -> None:
    """English falls back to the msgid and its plural."""
    assert line in render("withdrawal_reminder", "en", count=count).text.splitlines()


def test_the_reset_link_s_lifetime_is_counted_too() -> None:
    """Minutes are a counted number in both parts."""
    assert "в течение 1 минуты " in render("password_reset", "ru", valid_minutes=1).text
    assert "в течение 30 минут " in render("password_reset", "ru", valid_minutes=30).html
    assert "for 1 minute," in render("password_reset", "en", valid_minutes=1).text
    assert "for 30 minutes," in render("password_reset", "en", valid_minutes=30).html


@pytest.mark.parametrize("locale", emails.locales())
def test_the_footer_offers_unsubscribing_only_with_a_link(locale: str) -> None:
    """Both parts carry the settings link, and the unsubscribe link exactly when one is given."""
    settings_url = f"{FRONTEND}/settings/notifications"
    label = UNSUBSCRIBE_LABEL[locale]
    without = render("new_campaign", locale)
    assert settings_url in without.text and f'href="{settings_url}"' in without.html
    assert label not in without.text and label not in without.html
    assert "unsubscribe" not in without.text and "unsubscribe" not in without.html

    url = f'{FRONTEND}/unsubscribe/a.b-c?x=1&y="2"'
    email = emails.render(
        "new_campaign",
        locale,
        emails.SAMPLES["new_campaign"],
        recipient_name="Анна",
        frontend_url=FRONTEND,
        unsubscribe_url=url,
    )
    assert f"{label}: {url}" in email.text.splitlines()
    assert settings_url in email.text
    hrefs = re.findall(r'href="([^"]+)"', email.html)
    assert url not in email.html, "the URL must be escaped in the HTML part"
    assert "x=1&amp;y=&quot;2&quot;" in email.html
    assert [html.unescape(h) for h in hrefs if "/unsubscribe/" in h] == [url]
    assert label in email.html


@pytest.mark.parametrize("kind", emails.kinds())
def test_samples_carry_an_unsubscribe_link_unless_the_type_is_required(kind: str) -> None:
    """Previews and test emails look like the real thing: no way out of a required type."""
    email = emails.render_sample(kind, "en", FRONTEND)
    sample_url = f"{FRONTEND}/unsubscribe/sample-token"
    offered = not notification_types.get(kind).required
    assert (sample_url in email.text) == offered
    assert (f'href="{sample_url}"' in email.html) == offered


def test_one_environment_renders_each_locale_from_its_own_context() -> None:
    """Concurrent renders in different locales never borrow each other's language."""

    def subject(locale: str) -> str:
        return render("campaign_accepted", locale).subject

    expected = {locale: subject(locale) for locale in ("ru", "en")}
    assert expected["ru"] != expected["en"]
    locales = ["ru", "en"] * 50
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(subject, locales))
    assert got == [expected[locale] for locale in locales]


def test_unknown_locale_falls_back_to_russian() -> None:
    """Russian is the default language."""
    assert render("welcome", "de").subject == render("welcome", "ru").subject
    assert '<html lang="ru">' in render("welcome", "de").html


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
    """Broadcasts have no email."""
    with pytest.raises(ValueError):
        emails.render("broadcast", "en", {}, recipient_name="A", frontend_url=FRONTEND)


def test_warm_up_compiles_every_template_so_sends_compile_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After warm_up, rendering every kind in every locale compiles no template."""
    emails.environment.cache_clear()
    try:
        count = emails.warm_up(FRONTEND)
        assert count == len(emails.kinds()) * len(emails.locales())
        env = emails.environment()
        compiled: list[str] = []
        original = env.compile

        def counting(source: str, name: str | None = None, *args: object, **kw: object) -> object:
            compiled.append(name or "?")
            return original(source, name, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(env, "compile", counting)
        for kind in emails.kinds():
            for locale in emails.locales():
                render(kind, locale)
        assert compiled == []
    finally:
        emails.environment.cache_clear()


def test_warm_up_logs_a_template_that_cannot_render_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken sample is an error in the log, not a worker that cannot start."""
    monkeypatch.setitem(emails.SAMPLES, "new_campaign", {})
    with caplog.at_level("ERROR", logger="core.services.emails"):
        count = emails.warm_up(FRONTEND)
    assert count == (len(emails.kinds()) - 1) * len(emails.locales())
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == len(emails.locales())
    assert all("new_campaign" in e and "lacks a value" in e for e in errors)
