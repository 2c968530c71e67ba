"""One-click unsubscribe links (RFC 8058): GET asks, POST does it; no sign-in either way.

Mail scanners follow links, so GET only shows a page with a button. A mail provider's
one-click POST (`List-Unsubscribe=One-Click`) and the page's button both POST here.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from core import i18n, notification_types
from core.db import session_scope
from core.models import User
from core.notification_types import N_
from core.services import unsubscribe
from web.limits import limiter, setting

bp = Blueprint("unsubscribe", __name__)

TEXTS = {
    "title": N_("Unsubscribe"),
    "ask": N_('Stop emails about "{label}" to {email}?'),
    "button": N_("Unsubscribe"),
    "done": N_('Done: no more emails about "{label}" will be sent to {email}.'),
    "required_note": N_("Emails about your money and your account's security still arrive."),
    "manage": N_("All notification settings"),
    "invalid": N_("This unsubscribe link is not valid, so nothing was changed."),
    "invalid_hint": N_("Sign in to choose which notifications you get."),
}


def _link_key() -> str:
    """Count requests per link: a provider may POST many links from one address."""
    token = (request.view_args or {}).get("token", "")
    return "unsubscribe:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def masked(address: str) -> str:
    """An address shown to whoever holds the link, which may have been forwarded: a**@host."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'*' * max(2, len(local) - 1)}@{domain}"


def _page(state: str, locale: str, status: int, **values: str) -> ResponseReturnValue:
    """The page in the user's locale (the default one for a link nobody can read)."""
    fill = {"label": "", "email": "", **values}  # an invalid link's page names neither
    texts = {k: i18n.gettext(locale, v).format(**fill) for k, v in TEXTS.items()}
    settings_url = (
        f"{current_app.config['SETTINGS'].FRONTEND_URL.rstrip('/')}/settings/notifications"
    )
    html = render_template(
        "inbox/unsubscribe.html",
        state=state,
        locale=i18n.supported(locale),
        texts=texts,
        settings_url=settings_url,
        token=(request.view_args or {}).get("token", ""),
    )
    # Nothing about the link may be cached or sent on as a referrer.
    return html, status, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _browser_locale() -> str:
    """The visitor's language from Accept-Language, for a link that names no one."""
    return request.accept_languages.best_match(i18n.locales()) or i18n.DEFAULT_LOCALE


def _label(type_name: str, locale: str) -> str:
    """The type's name in the user's language."""
    return i18n.gettext(locale, notification_types.get(type_name).label)


@bp.route("/unsubscribe/<token>", methods=["GET"])
def confirm(token: str) -> ResponseReturnValue:
    """Show what the link would turn off, and a button; changes nothing."""
    settings = current_app.config["SETTINGS"]
    try:
        with session_scope() as session:
            wanted, user = unsubscribe.describe(session, settings, token)
            locale, email = user.locale, user.email
    except unsubscribe.InvalidUnsubscribeLink:
        return _page("invalid", _browser_locale(), 400)
    return _page("ask", locale, 200, label=_label(wanted.type, locale), email=masked(email))


@bp.route("/unsubscribe/<token>", methods=["POST"])
@limiter.limit(setting("RATE_LIMIT_UNSUBSCRIBE"), key_func=_link_key)
def apply(token: str) -> ResponseReturnValue:
    """Turn the link's kind of email off (idempotent): a provider's one-click, or the button."""
    settings = current_app.config["SETTINGS"]
    try:
        with session_scope() as session:
            done, _ = unsubscribe.apply(session, settings, token)
            user = session.get(User, done.user_id)
            locale, email = (user.locale, user.email) if user else (i18n.DEFAULT_LOCALE, "")
    except unsubscribe.InvalidUnsubscribeLink:
        return _page("invalid", _browser_locale(), 400)
    return _page("done", locale, 200, label=_label(done.type, locale), email=masked(email))
