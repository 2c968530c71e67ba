"""Render an email's subject, text and HTML from email_templates/, in the recipient's locale."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import css_inline
from babel.numbers import format_currency
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    UndefinedError,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from core.settings import ROOT

TEMPLATE_DIR = ROOT / "email_templates"
# SPEC.md's events table: the notification types that have an email.
KINDS = (
    "welcome",
    "new_campaign",
    "campaign_accepted",
    "campaign_completed",
    "withdrawal_reminder",
    "password_reset",
)
LOCALES = ("ru", "en")
DEFAULT_LOCALE = "ru"
CURRENCY = "RUB"
# One pattern for both locales, so amounts read "1 500,00 ₽" and "1,500.00 RUB".
MONEY_PATTERN = "#,##0.00\xa0¤"

# Sample snapshots, shaped like the payloads the services store, for previews and test emails.
SAMPLES: dict[str, dict[str, Any]] = {
    "welcome": {"name": "Анна Петрова"},
    "new_campaign": {
        "campaign_id": "00000000-0000-4000-8000-000000000001",
        "campaign_title": "Весенняя распродажа",
        "channel_id": "00000000-0000-4000-8000-000000000002",
        "channel_name": "Tech News",
        "advertiser_name": "ООО «Ромашка»",
        "price": "15000.00",
    },
    "campaign_accepted": {
        "campaign_id": "00000000-0000-4000-8000-000000000001",
        "campaign_title": "Весенняя распродажа",
        "channel_id": "00000000-0000-4000-8000-000000000002",
        "channel_name": "Tech News",
        "advertiser_name": "ООО «Ромашка»",
        "price": "15000.00",
    },
    "campaign_completed": {
        "campaign_id": "00000000-0000-4000-8000-000000000001",
        "campaign_title": "Весенняя распродажа",
        "channel_id": "00000000-0000-4000-8000-000000000002",
        "channel_name": "Tech News",
        "advertiser_name": "ООО «Ромашка»",
        "price": "15000.00",
        "fee": "1500.00",
        "payout": "13500.00",
    },
    "withdrawal_reminder": {"count": 3, "total": "42000.50"},
    # The real token is signed by the worker as it renders (core/services/password_reset.py).
    "password_reset": {"reset_token": "sample.reset.token", "valid_minutes": 30},
}


@dataclass(frozen=True)
class RenderedEmail:
    """The three parts of one email."""

    subject: str
    text: str
    html: str


def format_money(amount: Any, locale: str) -> str:
    """An amount from a stored snapshot ("1500.00") written for the locale; odd input as is."""
    return _format_money(str(amount), locale)


@lru_cache(maxsize=8192)
def _format_money(amount: str, locale: str) -> str:
    """Babel's formatting, cached: it is most of a render's cost and prices repeat."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        return amount
    return format_currency(value, CURRENCY, format=MONEY_PATTERN, locale=locale)


@pass_context
def _money(context: Context, amount: Any) -> str:
    """Template filter: `{{ price|money }}` in the locale being rendered."""
    return format_money(amount, context["locale"])


@pass_context
def _link(context: Context, *segments: Any) -> str:
    """Template function: `{{ link('campaigns', id) }}`, a front-end URL with quoted segments."""
    path = "/".join(quote(str(s), safe="") for s in segments)
    return f"{context['frontend_url'].rstrip('/')}/{path}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment: HTML autoescaped, text left alone, missing variables an error."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = _money
    env.globals["link"] = _link
    return env


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    """One inliner; remote stylesheets are never fetched while rendering."""
    return css_inline.CSSInliner(load_remote_stylesheets=False)


def one_line(text: str) -> str:
    """Join every line (CR, LF and Unicode breaks) with a space, so no header can be injected.

    No-break spaces inside amounts ("1 500,00 ₽") are kept.
    """
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def render(
    kind: str,
    locale: str,
    payload: dict[str, Any],
    *,
    recipient_name: str,
    frontend_url: str,
) -> RenderedEmail:
    """Render one email of `kind` from a notification's stored payload, Russian by default."""
    if kind not in KINDS:
        raise ValueError(f"no email template for {kind!r}")
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    env = environment()
    context = {
        **payload,
        "kind": kind,
        "locale": locale,
        "recipient_name": recipient_name,
        "frontend_url": frontend_url,
    }
    try:
        subject = env.get_template(f"{locale}/{kind}.subject.txt").render(context)
        text = env.get_template(f"{locale}/{kind}.txt").render(context)
        html = env.get_template(f"{locale}/{kind}.html").render(context)
    except UndefinedError as exc:
        raise ValueError(f"the snapshot lacks a value: {exc.message}") from None
    return RenderedEmail(subject=one_line(subject), text=text, html=_inliner().inline(html))


def render_sample(kind: str, locale: str, frontend_url: str) -> RenderedEmail:
    """Render `kind` with the sample snapshot, for previews and test emails."""
    name = "Anna Petrova" if locale == "en" else "Анна Петрова"
    return render(kind, locale, SAMPLES[kind], recipient_name=name, frontend_url=frontend_url)
