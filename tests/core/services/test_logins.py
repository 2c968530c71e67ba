"""Logins that can be ended: rotation, reuse detection, logout, password change."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from core.models import Login
from core.models.base import utcnow
from core.services import logins, tokens, users
from core.services.errors import Forbidden, Unauthorized
from tests.core.conftest import Database, Factory

PASSWORD = "correct-horse-battery"


def _signed_in(make: Factory, settings):
    user = make.user()
    user.password_hash = users.hash_password(settings, PASSWORD)
    pair = users.login(make.session, settings, user.email, PASSWORD, ("203.0.113.9", "Firefox"))
    make.session.commit()
    return user, pair


def test_a_login_is_recorded_with_where_it_came_from(make: Factory, settings) -> None:
    user, pair = _signed_in(make, settings)
    login = make.session.get(Login, pair.login_id)
    assert (login.user_id, login.address, login.user_agent) == (user.id, "203.0.113.9", "Firefox")
    assert tokens.verify(settings, pair.access_token, "access").login_id == login.id


def test_each_refresh_hands_out_the_next_token(make: Factory, settings) -> None:
    user, first = _signed_in(make, settings)
    second = logins.rotate(make.session, settings, first.refresh_token)
    third = logins.rotate(make.session, settings, second.refresh_token)
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    claims = tokens.verify(settings, third.access_token, "access")
    assert (claims.user_id, claims.login_id) == (user.id, first.login_id)


def test_a_retired_token_ends_the_whole_login(db: Database, make: Factory, settings) -> None:
    _, first = _signed_in(make, settings)
    second = logins.rotate(make.session, settings, first.refresh_token)
    make.session.commit()
    later = utcnow() + timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS + 1)
    with time_machine.travel(later), pytest.raises(logins.RefreshTokenReused) as caught:
        logins.rotate(make.session, settings, first.refresh_token)
    assert caught.value.code == "token_reused" and caught.value.login_id == first.login_id
    make.session.rollback()  # what the caller's unit of work does; the revocation stands
    with db.scope() as session:
        assert session.get(Login, first.login_id).revoked_reason == "refresh_token_reused"
    # The thief's newer token is dead too.
    with pytest.raises(Unauthorized) as again:
        logins.rotate(make.session, settings, second.refresh_token)
    assert again.value.code == "token_revoked"


def test_two_tabs_refreshing_at_once_keep_the_login(make: Factory, settings) -> None:
    _, first = _signed_in(make, settings)
    logins.rotate(make.session, settings, first.refresh_token)
    # The other tab, a moment later, with the token the first tab just retired.
    other = logins.rotate(make.session, settings, first.refresh_token)
    assert logins.rotate(make.session, settings, other.refresh_token).login_id == first.login_id


def test_logout_ends_the_login_and_is_repeatable(make: Factory, settings) -> None:
    _, pair = _signed_in(make, settings)
    assert logins.logout(make.session, settings, pair.refresh_token) == pair.login_id
    assert logins.logout(make.session, settings, pair.refresh_token) == pair.login_id
    assert logins.is_revoked(make.session, pair.login_id)
    with pytest.raises(Unauthorized):
        logins.rotate(make.session, settings, pair.refresh_token)


def test_old_refresh_tokens_without_a_login_are_refused(make: Factory, settings) -> None:
    user = make.user()
    legacy = tokens.issue(settings, user.id, "refresh")
    with pytest.raises(Unauthorized) as caught:
        logins.rotate(make.session, settings, legacy)
    assert caught.value.code == "token_invalid"


def test_a_password_change_ends_every_other_login(make: Factory, settings) -> None:
    user, here = _signed_in(make, settings)
    elsewhere = users.login(make.session, settings, user.email, PASSWORD)
    ended = users.change_password(
        make.session, settings, user.id, here.login_id, PASSWORD, "a-brand-new-password"
    )
    assert ended == [elsewhere.login_id]
    assert not logins.is_revoked(make.session, here.login_id)
    assert users.login(make.session, settings, user.email, "a-brand-new-password")
    with pytest.raises(Unauthorized):
        users.login(make.session, settings, user.email, PASSWORD)


def test_a_wrong_current_password_changes_nothing(make: Factory, settings) -> None:
    user, here = _signed_in(make, settings)
    with pytest.raises(Forbidden) as caught:
        users.change_password(make.session, settings, user.id, here.login_id, "nope", "x" * 12)
    assert caught.value.code == "wrong_password"
    live = make.session.scalars(select(Login).where(Login.revoked_at.is_(None))).all()
    assert [login.id for login in live] == [here.login_id]
