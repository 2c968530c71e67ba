"""Demo data: three logins that work, one channel, and a second run that changes nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.models import Channel, User
from core.services import demo, users
from core.services.errors import Conflict


def test_demo_makes_three_roles_and_a_channel(session, settings):
    data = demo.create_demo(session, settings)

    assert [(login.role, login.email) for login in data.logins] == [
        ("admin", "admin@example.com"),
        ("channel_owner", "owner@example.com"),
        ("advertiser", "advertiser@example.com"),
    ]
    for login in data.logins:
        user = users.find_by_email(session, login.email)
        assert user is not None and user.role == login.role and login.created
        assert users.check_password(demo.DEMO_PASSWORD, user.password_hash)
    channel = session.get(Channel, data.channel_id)
    assert channel.owner.email == "owner@example.com" and channel.price == demo.DEMO_PRICE_MINOR


def test_a_second_run_reuses_everything_and_resets_the_password(session, settings):
    first = demo.create_demo(session, settings)
    owner = users.find_by_email(session, "owner@example.com")
    owner.password_hash = users.hash_password(settings, "something-else")

    again = demo.create_demo(session, settings)

    assert again.channel_id == first.channel_id
    assert not any(login.created for login in again.logins)
    assert session.scalar(select(func.count()).select_from(User)) == 3
    assert users.check_password(demo.DEMO_PASSWORD, owner.password_hash)


def test_an_email_taken_by_another_role_is_refused(make, session, settings):
    make.user("advertiser", email="owner@example.com")

    with pytest.raises(Conflict):
        demo.create_demo(session, settings)
