"""`flask demo` prints a Telegram link for the owner; `flask demo-link-messenger` completes one.

The commands run in Flask's CLI runner against the unit tests' database, as a developer
without a bot token would run them: link with the printed code, then see the chat linked.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import update

from core.models import LinkCode
from core.models.base import utcnow
from core.services import messengers, users
from core.settings import Settings
from tests.core.conftest import Database
from web.demo_cli import DEMO_CHAT_ID, DEMO_PEER_ID, register_demo_command

pytestmark = pytest.mark.usefixtures("recorded_dispatches")

TELEGRAM_URL = re.compile(r"https://t\.me/(\w+)\?start=([A-Za-z0-9_-]+)")


def cli(settings: Settings):  # noqa: ANN201 - Flask's FlaskCliRunner
    """A CLI runner of an app with just the demo commands and these settings."""
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    register_demo_command(app)
    return app.test_cli_runner()


def run(settings: Settings, *args: str) -> Result:
    return cli(settings).invoke(args=list(args))


def links(db: Database, email: str) -> dict[str, tuple[str, str | None]]:
    """{messenger: (chat id, display name)} of the user with this email."""
    with db.scope() as session:
        user = users.find_by_email(session, email)
        found = messengers.links_of(session, user.id)
        return {c: (link.external_id, link.display_name) for c, link in found.items()}


def code_for(db: Database, settings: Settings, email: str, channel: str) -> str:
    """A fresh link code of the user with this email, as the settings page would get it."""
    with db.scope() as session:
        user = users.find_by_email(session, email)
        code, _ = messengers.start_link(session, settings, user.id, channel)
    return code


def test_demo_prints_a_telegram_link_that_the_command_completes(
    app_database: Database, settings: Settings
) -> None:
    db = app_database
    done = run(settings, "demo")
    assert done.exit_code == 0, done.output
    match = TELEGRAM_URL.search(done.output)
    assert match, done.output
    assert match.group(1) == settings.TELEGRAM_BOT_USERNAME
    code = match.group(2)
    # No TELEGRAM_BOT_TOKEN here: the output says how to link without a bot, with this code.
    assert f"flask --app wsgi demo-link-messenger telegram {code}" in done.output
    assert "telegram-*.json" in done.output
    assert links(db, "owner@example.com") == {}

    linked = run(settings, "demo-link-messenger", "telegram", code)
    assert linked.exit_code == 0, linked.output
    assert linked.output.startswith(f"linked: telegram chat {DEMO_CHAT_ID} for owner@example.com")
    assert "telegram-*.json" in linked.output
    assert links(db, "owner@example.com") == {"telegram": (str(DEMO_CHAT_ID), "@demo_chat")}

    # The same message again changes nothing; the code in another chat is spent.
    again = run(settings, "demo-link-messenger", "telegram", code)
    assert (again.exit_code, again.output.split(":")[0]) == (0, "relinked"), again.output
    other = run(settings, "demo-link-messenger", "telegram", code, "--chat-id", "1000002")
    assert (other.exit_code, other.output.split(":")[0]) == (1, "used"), other.output
    assert links(db, "owner@example.com")["telegram"][0] == str(DEMO_CHAT_ID)

    # A second demo run issues a new link and says the account is linked already.
    second = run(settings, "demo")
    assert second.exit_code == 0, second.output
    assert "now linked to @demo_chat" in second.output


def test_vk_and_the_refusals(app_database: Database, settings: Settings) -> None:
    db = app_database
    assert run(settings, "demo").exit_code == 0
    code = code_for(db, settings, "owner@example.com", messengers.VK)

    # Typed as a person might: lower case, with a space.
    typed = f"{code[:4].lower()} {code[4:]}"
    done = run(settings, "demo-link-messenger", "vk", typed, "--peer-id", "424242")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("linked: vk dialog 424242 for owner@example.com")
    assert links(db, "owner@example.com")["vk"] == ("424242", "id424242")

    # Another account's code sent from that dialog: it stays the owner's.
    theirs = code_for(db, settings, "advertiser@example.com", messengers.VK)
    taken = run(settings, "demo-link-messenger", "vk", theirs, "--peer-id", "424242")
    assert taken.exit_code == 1, taken.output
    assert taken.output.startswith("taken: vk dialog 424242 (linked for owner@example.com)")
    assert links(db, "advertiser@example.com") == {}

    # The default dialog, an expired code, a code that never was.
    with db.scope() as session:
        session.execute(update(LinkCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = run(settings, "demo-link-messenger", "vk", theirs)
    assert (expired.exit_code, expired.output.split(":")[0]) == (1, "expired"), expired.output
    fresh = code_for(db, settings, "advertiser@example.com", messengers.VK)
    linked = run(settings, "demo-link-messenger", "vk", fresh)
    assert linked.exit_code == 0, linked.output
    assert links(db, "advertiser@example.com")["vk"] == (str(DEMO_PEER_ID), f"id{DEMO_PEER_ID}")
    invalid = run(settings, "demo-link-messenger", "telegram", "not a code!")
    assert (invalid.exit_code, invalid.output.split(":")[0]) == (1, "invalid"), invalid.output

    # Each messenger takes its own option; and none of this in production.
    wrong = run(settings, "demo-link-messenger", "telegram", "abc", "--peer-id", "5")
    assert wrong.exit_code == 2 and "--peer-id is for vk" in wrong.output
    wrong = run(settings, "demo-link-messenger", "vk", "abc", "--chat-id", "5")
    assert wrong.exit_code == 2 and "--chat-id is for telegram" in wrong.output
    production = settings.model_copy(update={"APP_ENV": "production"})
    refused = run(production, "demo-link-messenger", "vk", fresh)
    assert refused.exit_code == 1 and "not in production" in refused.output
