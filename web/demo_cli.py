"""`flask --app wsgi demo`: demo accounts and a channel, with their logins printed.

`flask --app wsgi demo-link-messenger telegram|vk CODE` links a made-up chat with a code from
the settings page (or the one `demo` prints), as the bot or the community would on receiving
it: without TELEGRAM_BOT_TOKEN / VK_COMMUNITY_TOKEN nobody answers the real link, and the
messages then sent to that chat land in the outbox folder as telegram-*.json / vk-*.json.
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from sqlalchemy.orm import Session

from core.db import session_scope
from core.models import User
from core.models.messengers import MESSENGERS
from core.services import demo, messengers, users
from core.services.errors import Conflict
from core.settings import Settings

# The made-up chats linked when no --chat-id / --peer-id is given.
DEMO_CHAT_ID = 1_000_001
DEMO_PEER_ID = 1_000_001
# VK peer ids from here up are group conversations, which are never linked.
VK_MAX_PEER_ID = 2_000_000_000 - 1
LINK_COMMAND = "flask --app wsgi demo-link-messenger"
# What each outcome of messengers.complete_link means, as the command prints it.
OUTCOMES = {
    "linked": "its notifications go there from now on",
    "relinked": "it was linked to this chat already",
    "invalid": "no such code (check it, or get a new one on the settings page)",
    "expired": "the code has expired: get a new one on the settings page",
    "used": "the code was used already: get a new one on the settings page",
    "taken": "this chat is linked to another account; pick another --chat-id / --peer-id",
}


def _refuse_in_production(settings: Settings, what: str) -> None:
    """The demo commands are for a developer's machine."""
    if settings.APP_ENV == "production":
        raise click.ClickException(f"{what}: not in production")


def _telegram_link(session: Session, settings: Settings, owner: User) -> str:
    """A fresh t.me link for the owner, and how to complete it here when no bot answers it."""
    code, expires_at = messengers.start_link(session, settings, owner.id, messengers.TELEGRAM)
    url = f"https://t.me/{settings.TELEGRAM_BOT_USERNAME}?start={code}"
    linked = messengers.links_of(session, owner.id).get(messengers.TELEGRAM)
    now = (
        f", now linked to {linked.display_name or 'a chat'} (this link moves it)" if linked else ""
    )
    lines = [f"Telegram link for {owner.email}{now}, until {expires_at:%H:%M} UTC:", f"  {url}"]
    if settings.TELEGRAM_BOT_TOKEN:
        lines.append("  Open it and press Start: the bot links that chat.")
    else:
        lines += [
            "  No TELEGRAM_BOT_TOKEN: no bot answers it. Link a local chat instead, run a",
            f"  campaign, and find its message in {settings.OUTBOX_DIR}/telegram-*.json:",
            f"  {LINK_COMMAND} telegram {code}",
            f"  (VK likewise: 'Link VK' in the settings gives a code for {LINK_COMMAND} vk CODE.)",
        ]
    return "\n".join(lines)


def register_demo_command(app: Flask) -> None:
    """Attach the `demo` and `demo-link-messenger` commands to the Flask CLI."""

    @app.cli.command("demo")
    @click.option("--password", default=demo.DEMO_PASSWORD, show_default=True)
    @click.option("--domain", default="example.com", show_default=True, help="emails' domain")
    def demo_command(password: str, domain: str) -> None:
        """Create an admin, a channel owner with a channel, and an advertiser; print logins."""
        settings = current_app.config["SETTINGS"]
        _refuse_in_production(settings, "demo accounts have a known password")
        if len(password) < 8:
            raise click.BadParameter("must be at least 8 characters", param_hint="--password")
        try:
            with session_scope() as session:
                data = demo.create_demo(session, settings, password=password, domain=domain)
                owner_email = next(x.email for x in data.logins if x.role == "channel_owner")
                owner = users.find_by_email(session, owner_email)
                telegram = _telegram_link(session, settings, owner) if owner else ""
        except Conflict as exc:
            raise click.ClickException(exc.message) from None
        # Printed once committed: the link's code works from now on.
        click.echo(f"Demo data ready (channel {data.channel_name!r}, id {data.channel_id}):")
        for login in data.logins:
            note = "created" if login.created else "already there, password reset"
            click.echo(f"  {login.role:<14} {login.email:<26} {login.password}   ({note})")
        click.echo(
            f"Open {settings.FRONTEND_URL}/ in two windows (one private), log in as the owner in"
            " one and the advertiser in the other, and run a campaign."
        )
        if telegram:
            click.echo(telegram)

    @app.cli.command("demo-link-messenger")
    @click.argument("messenger", type=click.Choice(MESSENGERS))
    @click.argument("code")
    @click.option(
        "--chat-id",
        type=click.IntRange(min=1),
        help=f"telegram: the private chat to link  [default: {DEMO_CHAT_ID}]",
    )
    @click.option(
        "--peer-id",
        type=click.IntRange(min=1, max=VK_MAX_PEER_ID),
        help=f"vk: the user's dialog with the community  [default: {DEMO_PEER_ID}]",
    )
    @click.option(
        "--name", help="the account's name the settings show  [default: @demo_chat / id<peer>]"
    )
    def demo_link_messenger(
        messenger: str, code: str, chat_id: int | None, peer_id: int | None, name: str | None
    ) -> None:
        """Link a local chat with CODE, as the bot (/start CODE) or the community would.

        For development without TELEGRAM_BOT_TOKEN / VK_COMMUNITY_TOKEN: messages to the chat
        are then written to the outbox folder. Prints linked, relinked, invalid, expired, used
        or taken; exits 1 unless the chat ends up linked.
        """
        settings = current_app.config["SETTINGS"]
        _refuse_in_production(settings, "demo-link-messenger links chats nobody owns")
        if messenger == messengers.TELEGRAM:
            if peer_id is not None:
                raise click.UsageError("--peer-id is for vk; telegram takes --chat-id")
            external_id = str(chat_id or DEMO_CHAT_ID)
            display_name = name or "@demo_chat"
            where = f"telegram chat {external_id}"
        else:
            if chat_id is not None:
                raise click.UsageError("--chat-id is for telegram; vk takes --peer-id")
            external_id = str(peer_id or DEMO_PEER_ID)
            display_name = name or f"id{external_id}"
            where = f"vk dialog {external_id}"
        with session_scope() as session:
            result = messengers.complete_link(session, messenger, code, external_id, display_name)
            holder = session.get(User, result.user_id) if result.user_id else None
            email = holder.email if holder is not None else None
        whose = ""
        if email:
            whose = f" (linked for {email})" if result.kind == "taken" else f" for {email}"
        click.echo(f"{result.kind}: {where}{whose}: {OUTCOMES[result.kind]}")
        if not result.linked:
            raise click.exceptions.Exit(1)
        if _has_token(settings, messenger):
            click.echo(f"Its notifications are sent through the {messenger} API.")
        else:
            click.echo(f"Its notifications are written to {settings.OUTBOX_DIR}/{messenger}-*.json")


def _has_token(settings: Settings, messenger: str) -> bool:
    """Whether this messenger's messages really go out (else to the outbox)."""
    if messenger == messengers.TELEGRAM:
        return bool(settings.TELEGRAM_BOT_TOKEN)
    return bool(settings.VK_COMMUNITY_TOKEN)
