"""One-click unsubscribe tokens: signed, single-purpose, never expiring, rotated by a setting."""

from __future__ import annotations

import pytest
import time_machine

from core.services import preferences, tokens, unsubscribe
from core.settings import Settings
from tests.core.conftest import Factory


def test_a_link_turns_off_its_type_s_email_once(make: Factory, settings: Settings):
    owner = make.user("channel_owner")
    token = unsubscribe.sign(settings, owner.id, "new_campaign")

    assert unsubscribe.apply(make.session, settings, token)[1] is True
    assert unsubscribe.apply(make.session, settings, token)[1] is False  # idempotent
    row = next(r for r in preferences.describe(owner) if r["type"] == "new_campaign")
    assert row["channels"]["email"] is False
    other = next(r for r in preferences.describe(owner) if r["type"] == "withdrawal_processed")
    assert other["channels"]["email"] is True


def test_links_do_not_expire(make: Factory, settings: Settings):
    owner = make.user("channel_owner")
    token = unsubscribe.sign(settings, owner.id, "new_campaign")

    with time_machine.travel("2031-01-01"):
        assert unsubscribe.verify(settings, token).type == "new_campaign"


def test_the_headers_follow_rfc_8058(make: Factory, settings: Settings):
    token = unsubscribe.sign(settings, "u1", "new_campaign")
    with_mailto = settings.model_copy(update={"UNSUBSCRIBE_MAILTO": "unsub@example.com"})

    headers = unsubscribe.headers(with_mailto, token)

    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = headers["List-Unsubscribe"].split(", ")
    assert https == f"<{unsubscribe.link(settings, token)}>"
    assert mailto.startswith("<mailto:unsub@example.com?subject=unsubscribe%20")
    assert "mailto" not in unsubscribe.headers(settings, token)["List-Unsubscribe"]


@pytest.mark.parametrize("tamper", ["forged", "truncated", "access_token", "required", "garbage"])
def test_bad_links_are_refused_and_change_nothing(make: Factory, settings: Settings, tamper: str):
    owner = make.user("channel_owner")
    good = unsubscribe.sign(settings, owner.id, "new_campaign")
    token = {
        "forged": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "truncated": good[: len(good) // 2],
        "access_token": tokens.issue(settings, owner.id, "access"),
        "required": unsubscribe.sign(settings, owner.id, "campaign_completed"),
        "garbage": "not-a-token",
    }[tamper]

    with pytest.raises(unsubscribe.InvalidUnsubscribeLink) as refused:
        unsubscribe.apply(make.session, settings, token)

    assert refused.value.status == 400
    assert owner.notification_prefs == {}


def test_a_new_key_rotates_every_link(make: Factory, settings: Settings):
    owner = make.user("channel_owner")
    token = unsubscribe.sign(settings, owner.id, "new_campaign")
    rotated = settings.model_copy(update={"UNSUBSCRIBE_SECRET_KEY": "k" * 40})

    with pytest.raises(unsubscribe.InvalidUnsubscribeLink):
        unsubscribe.verify(rotated, token)
    assert unsubscribe.verify(rotated, unsubscribe.sign(rotated, owner.id, "new_campaign"))
