"""Render an email's subject, text and HTML from email_templates/, in the recipient's locale."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import css_inline
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    UndefinedError,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from core import i18n, notification_types
from core.settings import ROOT

log = logging.getLogger(__name__)
TEMPLATE_DIR = ROOT / "email_templates"
# The registry decides which types have an email; kept as a tuple for code that reads the name.
KINDS: tuple[str, ...] = notification_types.with_email()

_SAMPLE_CAMPAIGN: dict[str, Any] = {
    "campaign_id": "00000000-0000-4000-8000-000000000001",
    "campaign_title": "Весенняя распродажа",
    "channel_id": "00000000-0000-4000-8000-000000000002",
    "channel_name": "Tech News",
    "advertiser_name": "ООО «Ромашка»",
    "price": "15000.00",
}
_SAMPLE_WITHDRAWAL: dict[str, Any] = {
    "withdrawal_id": "00000000-0000-4000-8000-000000000003",
    "amount": "1500.00",
}

# Sample snapshots, shaped like the payloads the services store, for previews and test emails.
SAMPLES: dict[str, dict[str, Any]] = {
    "welcome": {"name": "Анна Петрова"},
    "new_campaign": dict(_SAMPLE_CAMPAIGN),
    "campaign_accepted": dict(_SAMPLE_CAMPAIGN),
    "campaign_rejected": dict(_SAMPLE_CAMPAIGN),
    "campaign_completed": {**_SAMPLE_CAMPAIGN, "fee": "1500.00", "payout": "13500.00"},
    "withdrawal_processed": dict(_SAMPLE_WITHDRAWAL),
    "withdrawal_rejected": dict(_SAMPLE_WITHDRAWAL),
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


def kinds() -> tuple[str, ...]:
    """The notification types that have an email, in the registry's order."""
    return KINDS


def locales() -> tuple[str, ...]:
    """The locales an email can be written in: every one with a catalogue, the default first."""
    return i18n.locales()


def __getattr__(name: str) -> Any:
    """`emails.LOCALES` for older callers, read when asked rather than at import."""
    if name == "LOCALES":
        return locales()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# One environment serves every locale, so these read the locale from the render's context.
@pass_context
def _gettext(context: Context, message: str) -> str:
    """Template gettext: the message in the locale being rendered."""
    return i18n.gettext(context["locale"], message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    """Template ngettext: the plural form the locale being rendered picks for `n`."""
    return i18n.ngettext(context["locale"], singular, plural, n)


@pass_context
def _money(context: Context, amount: Any) -> str:
    """Template filter: `{{ price|money }}` in the locale being rendered."""
    return i18n.format_money(amount, context["locale"])


@pass_context
def _link(context: Context, *segments: Any) -> str:
    """Template function: `{{ link('campaigns', id) }}`, a front-end URL with quoted segments."""
    path = "/".join(quote(str(s), safe="") for s in segments)
    return f"{context['frontend_url'].rstrip('/')}/{path}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment: gettext, HTML autoescaped, text as is, missing values an error."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # Newstyle: `{% trans %}` values are escaped in HTML and `%` never needs doubling by hand.
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
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
    unsubscribe_url: str | None = None,
) -> RenderedEmail:
    """Render one email of `kind` from a notification's stored payload, in the user's locale."""
    if kind not in kinds():
        raise ValueError(f"no email template for {kind!r}")
    env = environment()
    context = {
        **payload,
        "kind": kind,
        "locale": i18n.supported(locale),
        "recipient_name": recipient_name,
        "frontend_url": frontend_url,
        "unsubscribe_url": unsubscribe_url,
    }
    try:
        subject = env.get_template(f"{kind}.subject.txt").render(context)
        text = env.get_template(f"{kind}.txt").render(context)
        html = env.get_template(f"{kind}.html").render(context)
    except UndefinedError as exc:
        raise ValueError(f"the snapshot lacks a value: {exc.message}") from None
    return RenderedEmail(subject=one_line(subject), text=text, html=_inliner().inline(html))


def render_sample(kind: str, locale: str, frontend_url: str) -> RenderedEmail:
    """Render `kind` with the sample snapshot, for previews and test emails."""
    name = "Анна Петрова" if i18n.supported(locale) == "ru" else "Anna Petrova"
    # Required types carry no unsubscribe link (they cannot be turned off).
    unsubscribe_url = (
        None
        if notification_types.get(kind).required
        else f"{frontend_url.rstrip('/')}/unsubscribe/sample-token"
    )
    return render(
        kind,
        locale,
        SAMPLES[kind],
        recipient_name=name,
        frontend_url=frontend_url,
        unsubscribe_url=unsubscribe_url,
    )


def warm_up(frontend_url: str) -> int:
    """Render every kind's sample in every locale once; returns how many rendered.

    Compiling the templates, reading the catalogues and loading the locale data cost a process
    ~110 ms on its first emails; a worker does it before it forks its pool, so every child
    starts warm. A template that fails here is logged and still fails, as before, on its send.
    """
    rendered = 0
    for kind in kinds():
        for locale in locales():
            try:
                render_sample(kind, locale, frontend_url)
                rendered += 1
            except (ValueError, LookupError, OSError) as exc:
                log.error("email template %s (%s) does not render: %s", kind, locale, exc)
    return rendered
