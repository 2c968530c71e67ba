"""`flask --app wsgi demo`: demo accounts and a channel, with their logins printed."""

from __future__ import annotations

import click
from flask import Flask, current_app

from core.db import session_scope
from core.services import demo
from core.services.errors import Conflict


def register_demo_command(app: Flask) -> None:
    """Attach the `demo` command to the Flask CLI."""

    @app.cli.command("demo")
    @click.option("--password", default=demo.DEMO_PASSWORD, show_default=True)
    @click.option("--domain", default="example.com", show_default=True, help="emails' domain")
    def demo_command(password: str, domain: str) -> None:
        """Create an admin, a channel owner with a channel, and an advertiser; print logins."""
        settings = current_app.config["SETTINGS"]
        if settings.APP_ENV == "production":
            raise click.ClickException("demo accounts have a known password: not in production")
        if len(password) < 8:
            raise click.BadParameter("must be at least 8 characters", param_hint="--password")
        try:
            with session_scope() as session:
                data = demo.create_demo(session, settings, password=password, domain=domain)
        except Conflict as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"Demo data ready (channel {data.channel_name!r}, id {data.channel_id}):")
        for login in data.logins:
            note = "created" if login.created else "already there, password reset"
            click.echo(f"  {login.role:<14} {login.email:<26} {login.password}   ({note})")
        click.echo(
            f"Open {settings.FRONTEND_URL}/ in two windows (one private), log in as the owner in"
            " one and the advertiser in the other, and run a campaign."
        )
