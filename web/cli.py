"""`flask --app wsgi …` commands."""

from __future__ import annotations

import getpass
import re

import click
from celery.exceptions import TimeoutError as CeleryTimeoutError
from flask import Flask, current_app

from core.db import session_scope
from core.services import audit, emails, users
from core.services.errors import Conflict
from core.services.jobs import runner
from web.celery_client import celery_client
from web.demo_cli import register_demo_command

# The worker task that sends one sample email (tasks/email.py); named, so web never imports it.
TEST_EMAIL_TASK = "email.send_test"
# The worker task that calls the Bot API's setWebhook (tasks/); named for the same reason.
SET_WEBHOOK_TASK = "messengers.telegram_set_webhook"
TELEGRAM_WEBHOOK_PATH = "/api/integrations/telegram/webhook"
SET_WEBHOOK_TIMEOUT_SECONDS = 30
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def register_commands(app: Flask) -> None:
    """Attach the platform's commands to the Flask CLI."""
    register_demo_command(app)

    @app.cli.command("create-admin")
    @click.option("--email", required=True)
    @click.option("--name", required=True)
    @click.option("--password", required=True)
    @click.option("--locale", type=click.Choice(["ru", "en"]), default="ru", show_default=True)
    def create_admin(email: str, name: str, password: str, locale: str) -> None:
        """Create an admin (admins are never made by registration)."""
        if not 8 <= len(password.encode()) <= 72:
            # bcrypt uses at most 72 bytes of a password and refuses longer ones.
            raise click.BadParameter("must be 8 to 72 bytes long", param_hint="--password")
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
                audit.record(
                    session, None, "admin.create", "user", user.id, ("cli", None),
                    email=user.email, operator=getpass.getuser(),
                )  # fmt: skip
        except Conflict as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"admin {user.email} created with id {user.id}")

    @app.cli.command("send-test-email")
    @click.argument("address")
    @click.option(
        "--locale", type=click.Choice([*emails.locales(), "all"]), default="ru", show_default=True
    )
    def send_test_email(address: str, locale: str) -> None:
        """Have a worker send one email of each template, with sample data, to ADDRESS."""
        if not EMAIL_RE.match(address):
            raise click.BadParameter("not an email address", param_hint="ADDRESS")
        locales = emails.locales() if locale == "all" else (locale,)
        # Emails leave from workers only (SPEC.md), so this enqueues one task per email.
        client = celery_client()
        try:
            for loc in locales:
                for kind in emails.kinds():
                    client.send_task(TEST_EMAIL_TASK, args=[address, kind, loc], retry=False)
        except Exception as exc:
            raise click.ClickException(f"could not reach the broker: {exc}") from None
        settings = current_app.config["SETTINGS"]
        where = "SendGrid" if settings.SENDGRID_API_KEY else f"the outbox {settings.OUTBOX_DIR}"
        count = len(locales) * len(emails.kinds())
        click.echo(f"queued {count} test emails to {address}; a worker sends them through {where}")

    @app.cli.command("telegram-set-webhook")
    @click.option(
        "--url",
        default=None,
        help=f"The webhook's public https URL; default: FRONTEND_URL + {TELEGRAM_WEBHOOK_PATH}",
    )
    def telegram_set_webhook(url: str | None) -> None:
        """Have a worker register the bot's webhook (with its secret) at Telegram."""
        settings = current_app.config["SETTINGS"]
        for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"):
            if not getattr(settings, name):
                raise click.UsageError(f"{name} is not set: the webhook cannot be registered")
        url = url or settings.FRONTEND_URL.rstrip("/") + TELEGRAM_WEBHOOK_PATH
        if not url.startswith("https://"):
            # Telegram calls only https:// webhooks; it would refuse this one after the round trip.
            raise click.BadParameter(f"{url} is not an https:// URL", param_hint="--url")
        # Bot API calls leave from workers only, like emails.
        client = celery_client()
        waits = bool(client.conf.result_backend)
        try:
            sent = client.send_task(
                SET_WEBHOOK_TASK, args=[url], retry=False, ignore_result=not waits
            )
        except Exception as exc:
            raise click.ClickException(f"could not reach the broker: {exc}") from None
        if not waits:
            # celeryconfig stores no results, so there is no answer to wait for.
            click.echo(f"queued; a worker registers {url} with Telegram (its log says how it went)")
            return
        try:
            answer = sent.get(timeout=SET_WEBHOOK_TIMEOUT_SECONDS)
        except CeleryTimeoutError:
            raise click.ClickException(
                f"no worker answered within {SET_WEBHOOK_TIMEOUT_SECONDS} s; is one running?"
            ) from None
        except Exception as exc:
            raise click.ClickException(f"Telegram refused the webhook: {exc}") from None
        click.echo(f"webhook registered at {url}" + (f": {answer}" if answer else ""))

    @app.cli.command("run-job")
    @click.argument("name", type=click.Choice(list(runner.JOBS)))
    def run_job(name: str) -> None:
        """Run scheduled job NAME now, in the foreground, and print what it did."""
        # Manual runs bypass the period's lease (recorded without a period); each job stays
        # safe to repeat: stats upsert, cleanup finds nothing more, reminders dedupe per window.
        try:
            outcome = runner.run_job(name, trigger="manual")
        except Exception as exc:
            raise click.ClickException(f"{name} failed: {type(exc).__name__}: {exc}") from None
        click.echo(f"{name}: {outcome.status} in {outcome.duration_ms} ms")
        for key, value in outcome.result.items():
            click.echo(f"  {key}: {value}")
