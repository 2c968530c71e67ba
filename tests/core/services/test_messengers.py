"""Linking Telegram and VK chats with one-time codes: issued, hashed, used once, never stolen."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.models import LinkCode, MessengerLink, User
from core.models.base import utcnow
from core.services import messengers
from core.services.messengers import TELEGRAM, VK
from core.settings import Settings
from tests.core.concurrency import race
from tests.core.conftest import Database, Factory

CHANNELS = [TELEGRAM, VK]


def start(make: Factory, user: User, channel: str = TELEGRAM) -> str:
    """A fresh code of the user for the channel."""
    code, _ = messengers.start_link(make.session, make.settings, user.id, channel)
    return code


def link(make: Factory, channel: str, code: str, chat: str, name: str | None = "@someone"):
    """Send `code` from `chat`, as the webhooks do."""
    return messengers.complete_link(make.session, channel, code, chat, name)


def chats(make: Factory, channel: str = TELEGRAM) -> dict[str, str]:
    """{chat: user id} of every link on the channel."""
    rows = make.session.scalars(select(MessengerLink).where(MessengerLink.channel == channel))
    return {row.external_id: row.user_id for row in rows}


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_code_links_the_chat_it_is_sent_from(make: Factory, channel: str):
    user = make.user(locale="en")
    code = start(make, user, channel)

    result = link(make, channel, code, "1001", "@anna")

    assert (result.kind, result.user_id, result.linked) == ("linked", user.id, True)
    [row] = messengers.links_of(make.session, user.id).values()
    assert (row.channel, row.external_id, row.display_name) == (channel, "1001", "@anna")
    assert row.created_at <= utcnow()
    assert messengers.chat_locale(make.session, channel, "1001") == "en"
    assert messengers.chat_locale(make.session, channel, "1002") is None


def test_codes_have_each_channel_s_format_and_only_their_hash_is_stored(make: Factory):
    user = make.user()
    before = utcnow()
    telegram, expires_at = messengers.start_link(make.session, make.settings, user.id, TELEGRAM)
    vk = start(make, user, VK)

    # A /start payload: at most 64 of A-Z a-z 0-9 _ -; a VK code: 8 unambiguous characters.
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}", telegram)
    assert re.fullmatch(f"[{messengers.VK_ALPHABET}]{{8}}", vk)
    assert not set(messengers.VK_ALPHABET) & set("01OIL")
    ttl = timedelta(seconds=make.settings.LINK_CODE_TTL_SECONDS)
    assert before + ttl <= expires_at <= utcnow() + ttl
    rows = make.session.scalars(select(LinkCode)).all()
    assert sorted(r.code_hash for r in rows) == sorted(
        hashlib.sha256(c.encode()).hexdigest() for c in (telegram, vk)
    )
    assert {r.channel for r in rows} == {TELEGRAM, VK}
    assert all(r.used_at is None and r.user_id == user.id for r in rows)


def test_a_vk_code_is_read_as_a_person_types_it(make: Factory):
    user = make.user()
    code = start(make, user, VK)
    typed = f"  {code[:4].lower()} {code[4:].lower()}\n"

    assert link(make, VK, typed, "5005").kind == "linked"


def test_a_code_works_once_and_a_retry_from_the_same_chat_changes_nothing(make: Factory):
    user = make.user()
    code = start(make, user)
    assert link(make, TELEGRAM, code, "1001").kind == "linked"

    # Someone else holding the used code gets nothing.
    assert link(make, TELEGRAM, code, "2002").kind == "used"
    # The same message again (a provider's retry) is answered as done, and does nothing.
    assert link(make, TELEGRAM, code, "1001").kind == "relinked"
    assert chats(make) == {"1001": user.id}
    [row] = make.session.scalars(select(LinkCode)).all()
    assert row.used_at is not None


def test_an_expired_code_links_nothing(make: Factory, monkeypatch: pytest.MonkeyPatch):
    user = make.user()
    code, expires_at = messengers.start_link(make.session, make.settings, user.id, VK)
    monkeypatch.setattr(messengers, "utcnow", lambda: expires_at + timedelta(seconds=1))

    assert link(make, VK, code, "5005").kind == "expired"
    assert chats(make, VK) == {}


@pytest.mark.parametrize(
    ("channel", "sent"),
    [
        (TELEGRAM, ""),
        (TELEGRAM, "not a code"),
        (TELEGRAM, "x" * 65),
        (TELEGRAM, "AAAAAAAAAAAAAAAAAAAAAA"),  # well-formed, never issued
        (VK, "hello there"),
        (VK, "ABCDEFG0"),  # a 0 is never in a code
        (VK, "ABCDEFGH"),
    ],
)
def test_garbage_and_unknown_codes_are_invalid(make: Factory, channel: str, sent: str):
    start(make, make.user(), channel)

    result = link(make, channel, sent, "1001")

    assert (result.kind, result.user_id, result.linked) == ("invalid", None, False)
    assert chats(make, channel) == {}


def test_a_code_of_one_messenger_does_not_work_on_the_other(make: Factory):
    user = make.user()
    vk_code = start(make, user, VK)
    telegram_code = start(make, user, TELEGRAM)

    assert link(make, TELEGRAM, vk_code, "1001").kind == "invalid"
    assert link(make, VK, telegram_code, "1001").kind == "invalid"
    assert link(make, VK, vk_code, "1001").kind == "linked"


def test_a_new_code_makes_the_earlier_ones_stop_working(make: Factory):
    user = make.user()
    first = start(make, user)
    second = start(make, user)

    assert link(make, TELEGRAM, first, "1001").kind == "invalid"
    assert link(make, TELEGRAM, second, "1001").kind == "linked"
    # Codes of the other messenger are left alone.
    vk = start(make, user, VK)
    start(make, user, TELEGRAM)
    assert link(make, VK, vk, "5005").kind == "linked"


def test_a_chat_linked_to_someone_is_not_taken_by_another_s_code(make: Factory):
    owner, intruder = make.user(), make.user()
    assert link(make, TELEGRAM, start(make, owner), "1001").kind == "linked"
    code = start(make, intruder)

    result = link(make, TELEGRAM, code, "1001", "@intruder")

    assert (result.kind, result.user_id) == ("taken", owner.id)
    assert chats(make) == {"1001": owner.id}
    assert messengers.links_of(make.session, owner.id)[TELEGRAM].display_name == "@someone"
    # Refused, not spent: the intruder's own chat still takes it.
    assert link(make, TELEGRAM, code, "2002").kind == "linked"


def test_a_new_code_from_the_linked_chat_is_relinked(make: Factory):
    user = make.user()
    assert link(make, TELEGRAM, start(make, user), "1001", "@old").kind == "linked"

    result = link(make, TELEGRAM, start(make, user), "1001", "@new")

    assert (result.kind, result.user_id, result.linked) == ("relinked", user.id, True)
    [row] = messengers.links_of(make.session, user.id).values()
    assert (row.external_id, row.display_name) == ("1001", "@new")


def test_linking_another_chat_moves_the_link_there(make: Factory):
    user, other = make.user(), make.user()
    assert link(make, TELEGRAM, start(make, user), "1001").kind == "linked"

    assert link(make, TELEGRAM, start(make, user), "2002", "@phone").kind == "linked"

    assert chats(make) == {"2002": user.id}
    assert messengers.links_of(make.session, user.id)[TELEGRAM].display_name == "@phone"
    # The chat left behind is free again.
    assert link(make, TELEGRAM, start(make, other), "1001").kind == "linked"
    assert chats(make) == {"2002": user.id, "1001": other.id}


def test_the_same_chat_id_on_two_messengers_is_two_chats(make: Factory):
    first, second = make.user(), make.user()

    assert link(make, TELEGRAM, start(make, first), "42").kind == "linked"
    assert link(make, VK, start(make, second, VK), "42").kind == "linked"

    assert (chats(make, TELEGRAM), chats(make, VK)) == ({"42": first.id}, {"42": second.id})


def test_unlink_by_the_user_and_by_the_chat(make: Factory):
    user = make.user()
    link(make, TELEGRAM, start(make, user), "1001")
    link(make, VK, start(make, user, VK), "5005")

    assert messengers.unlink(make.session, user.id, TELEGRAM, "unlinked by the user") is True
    assert messengers.unlink(make.session, user.id, TELEGRAM, "unlinked by the user") is False
    assert set(messengers.links_of(make.session, user.id)) == {VK}

    assert messengers.unlink_chat(make.session, VK, "9999", "/stop") is False
    assert messengers.unlink_chat(make.session, VK, "5005", "/stop") is True
    assert messengers.links_of(make.session, user.id) == {}
    # The code that linked it stays spent.
    assert messengers.chat_locale(make.session, VK, "5005") is None


def test_a_display_name_is_made_storable(make: Factory):
    user = make.user()
    link(make, TELEGRAM, start(make, user), "1001", "  " + "n" * 500)
    # NUL and a lone surrogate arrive in JSON; PostgreSQL would refuse both.
    link(make, VK, start(make, user, VK), "5005", "a\x00b\ud800c")
    make.session.commit()

    found = messengers.links_of(make.session, user.id)
    assert found[TELEGRAM].display_name == "n" * messengers.DISPLAY_NAME_MAX
    assert found[VK].display_name == "ab?c"


def test_an_unknown_channel_is_a_programming_error(make: Factory, settings: Settings):
    with pytest.raises(ValueError, match="unknown messenger"):
        messengers.start_link(make.session, settings, make.user().id, "email")


# --- races ----------------------------------------------------------------------------


def test_one_code_sent_from_two_chats_at_once_links_one(db: Database, make: Factory):
    user = make.user()
    code = start(make, user)
    make.session.commit()

    def send_from(chat: str):
        def action(barrier):
            with db.scope() as session:
                barrier.wait(timeout=10)
                return messengers.complete_link(session, TELEGRAM, code, chat, None).kind

        return action

    outcomes = race(send_from("1001"), send_from("2002"))

    assert sorted(outcomes) == ["linked", "used"], outcomes
    with db.scope() as session:
        assert len(messengers.links_of(session, user.id)) == 1


def test_two_users_codes_for_one_chat_at_once_link_one(db: Database, make: Factory):
    first, second = make.user(), make.user()
    codes = {first.id: start(make, first), second.id: start(make, second)}
    make.session.commit()

    def send(code: str):
        def action(barrier):
            with db.scope() as session:
                barrier.wait(timeout=10)
                return messengers.complete_link(session, TELEGRAM, code, "1001", None).kind

        return action

    outcomes = race(*(send(code) for code in codes.values()))

    assert sorted(outcomes) == ["linked", "taken"], outcomes
    with db.scope() as session:
        rows = session.scalars(select(MessengerLink)).all()
        assert [(r.external_id, r.user_id in codes) for r in rows] == [("1001", True)]
