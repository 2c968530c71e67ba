"""Reset links: one use, 30 minutes, good for nothing else; requests store no secret."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from core.models import Delivery, Notification
from core.models.base import utcnow
from core.services import logins, password_reset, tokens, users
from core.services.errors import Unauthorized
from tests.core.conftest import Factory


def test_a_link_sets_the_password_once_and_ends_every_login(make: Factory, settings) -> None:
    user = make.user()
    user.password_hash = users.hash_password(settings, "old-password-1")
    pair = users.login(make.session, settings, user.email, "old-password-1")
    link = password_reset.sign(settings, user)

    ended = password_reset.confirm(make.session, settings, link, "new-password-1")

    assert ended == [pair.login_id] and logins.is_revoked(make.session, pair.login_id)
    assert users.login(make.session, settings, user.email, "new-password-1")
    with pytest.raises(password_reset.InvalidResetToken, match="already been used"):
        password_reset.confirm(make.session, settings, link, "third-password-1")


def test_a_link_expires(make: Factory, settings) -> None:
    user = make.user()
    link = password_reset.sign(settings, user)
    later = utcnow() + timedelta(seconds=settings.PASSWORD_RESET_TTL_SECONDS + 1)
    with time_machine.travel(later), pytest.raises(password_reset.InvalidResetToken):
        password_reset.confirm(make.session, settings, link, "new-password-1")


def test_tokens_do_not_stand_in_for_each_other(make: Factory, settings) -> None:
    user = make.user()
    link = password_reset.sign(settings, user)
    with pytest.raises(Unauthorized):
        tokens.verify(settings, link, "access")
    access = tokens.issue(settings, user.id, "access")
    with pytest.raises(password_reset.InvalidResetToken):
        password_reset.confirm(make.session, settings, access, "new-password-1")


def test_a_request_queues_an_email_and_stores_no_secret(make: Factory, settings) -> None:
    user = make.user()
    assert password_reset.request(make.session, f"  {user.email.upper()} ")
    assert not password_reset.request(make.session, "nobody@example.com")
    notice = make.session.scalars(
        select(Notification).where(Notification.type == "password_reset")
    ).one()
    assert (notice.user_id, notice.payload) == (user.id, {})
    channels = make.session.scalars(
        select(Delivery.channel).where(Delivery.notification_id == notice.id)
    ).all()
    assert channels == ["email"]
