"""`flask --app wsgi …` commands."""

from __future__ import annotations

import click
from flask import Flask, current_app

from core.db import session_scope
from core.services import users
from core.services.errors import Conflict


def register_commands(app: Flask) -> None:
    """Attach the platform's commands to the Flask CLI."""

    @app.cli.command("create-admin")
    @click.option("--email", required=True)
    @click.option("--name", required=True)
    @click.option("--password", required=True)
    @click.option("--locale", type=click.Choice(["ru", "en"]), default="ru", show_default=True)
    def create_admin(email: str, name: str, password: str, locale: str) -> None:
        """Create an admin (admins are never made by registration)."""
        if len(password) < 8:
            raise click.BadParameter("must be at least 8 characters", param_hint="--password")
        try:
            with session_scope() as session:
                user = users.create_user(
                    session,
                    current_app.config["SETTINGS"],
                    email=email,
                    password=password,
                    name=name,
                    role="admin",
                    locale=locale,
                )
        except Conflict as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"admin {user.email} created with id {user.id}")
