"""Registration, login and refresh."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Delivery, Notification, User
from core.services import tokens, users
from core.services.errors import Conflict, NotFound, Unauthorized
from core.settings import Settings


def register(session: Session, settings: Settings, email: str = "Ann@Example.com", **extra: str):
    fields = {"password": "s3cret-pass", "name": "Ann", "role": "advertiser", **extra}
    return users.register(session, settings, email=email, **fields)


def test_register_stores_the_email_lowercased_and_a_password_hash(session, settings):
    user, _ = register(session, settings)

    assert user.email == "ann@example.com"
    assert user.locale == "ru"
    assert user.balance == 0
    assert user.password_hash != "s3cret-pass"
    assert users.check_password("s3cret-pass", user.password_hash)


def test_register_returns_tokens_of_the_new_user(session, settings):
    user, pair = register(session, settings)

    assert tokens.verify(settings, pair.access_token, "access").user_id == user.id
    assert tokens.verify(settings, pair.refresh_token, "refresh").user_id == user.id


def test_register_queues_a_welcome_email_only(session, settings):
    user, _ = register(session, settings, locale="en")
    session.commit()

    notification = session.scalars(select(Notification)).one()
    assert (notification.user_id, notification.type, notification.seq) == (user.id, "welcome", 1)
    assert notification.title == "Welcome, Ann!"
    channels = session.scalars(select(Delivery.channel)).all()
    assert channels == ["email"]


@pytest.mark.parametrize("again", ["ann@example.com", "ANN@EXAMPLE.COM", "aNn@eXample.Com"])
def test_duplicate_email_is_a_conflict_whatever_its_case(session, settings, again):
    register(session, settings, email="Ann@Example.com")

    with pytest.raises(Conflict) as caught:
        register(session, settings, email=again)

    assert caught.value.code == "email_taken"
    assert caught.value.status == 409
    assert len(session.scalars(select(User)).all()) == 1


def test_login_accepts_the_email_in_any_case(session, settings):
    user, _ = register(session, settings)

    pair = users.login(session, settings, "ANN@example.COM", "s3cret-pass")

    assert tokens.verify(settings, pair.access_token, "access").user_id == user.id
    assert tokens.verify(settings, pair.refresh_token, "refresh").user_id == user.id


@pytest.mark.parametrize(
    ("email", "password"),
    [("ann@example.com", "wrong"), ("ann@example.com", ""), ("nobody@example.com", "s3cret-pass")],
)
def test_login_refuses_bad_credentials_without_saying_which_part(
    session, settings, email, password
):
    register(session, settings)

    with pytest.raises(Unauthorized) as caught:
        users.login(session, settings, email, password)

    assert caught.value.code == "invalid_credentials"
    assert caught.value.message == "invalid email or password"


def test_get_user_of_an_unknown_id_is_not_found(session):
    with pytest.raises(NotFound):
        users.get_user(session, "00000000-0000-0000-0000-000000000000")
