"""Every email template in every locale, rendered with sample data (development, and admins)."""

from __future__ import annotations

from flask import Response, current_app, g, render_template_string, request
from flask_smorest import Blueprint

from core.db import session_scope
from core.services import emails, tokens
from core.services.errors import NotFound
from web.auth import actor, bearer_token

blp = Blueprint(
    "email_previews", __name__, url_prefix="/api/emails/previews", description="Email previews"
)

INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Email previews</title></head>
<body style="font-family: sans-serif">
<h1>Email previews</h1>
<table cellpadding="6">
<tr><th align="left">template</th>{% for l in locales %}<th>{{ l }}</th>{% endfor %}</tr>
{% for kind, row in rows %}
<tr><td>{{ kind }}</td>{% for locale, subject in row %}
<td><a href="{{ base }}/{{ kind }}/{{ locale }}">{{ subject }}</a>
 · <a href="{{ base }}/{{ kind }}/{{ locale }}.txt">text</a></td>
{% endfor %}</tr>
{% endfor %}
</table></body></html>"""


def _allowed() -> None:
    """Open in development; elsewhere only to a signed-in admin."""
    settings = current_app.config["SETTINGS"]
    if settings.APP_ENV == "development":
        return
    g.user_id = tokens.verify(settings, bearer_token(), "access").user_id
    with session_scope() as session:
        actor(session, "admin")


def _render(kind: str, locale: str) -> emails.RenderedEmail:
    """The sample rendering of one template, or 404 for an unknown one."""
    if kind not in emails.kinds() or locale not in emails.locales():
        raise NotFound("no such email template", details={"kind": kind, "locale": locale})
    return emails.render_sample(kind, locale, current_app.config["SETTINGS"].FRONTEND_URL)


@blp.route("", methods=["GET"])
@blp.doc(security=[{"bearer": []}])
def index() -> Response:
    """A page linking every template in every locale, each with its subject."""
    _allowed()
    frontend = current_app.config["SETTINGS"].FRONTEND_URL
    rows = [
        (k, [(loc, emails.render_sample(k, loc, frontend).subject) for loc in emails.locales()])
        for k in emails.kinds()
    ]
    page = render_template_string(
        INDEX, rows=rows, locales=emails.locales(), base=request.path.rstrip("/")
    )
    return Response(page, mimetype="text/html")


@blp.route("/<kind>/<locale>", methods=["GET"])
@blp.doc(security=[{"bearer": []}])
def html_part(kind: str, locale: str) -> Response:
    """The HTML part, as a mail client would show it (CSS inlined)."""
    _allowed()
    if locale.endswith(".txt"):
        rendered = _render(kind, locale.removesuffix(".txt"))
        body = f"Subject: {rendered.subject}\n\n{rendered.text}"
        return Response(body, mimetype="text/plain")
    return Response(_render(kind, locale).html, mimetype="text/html")
