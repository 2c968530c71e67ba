"""The signed-in user: profile, and which notifications reach them where."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from core.db import session_scope
from core.models import MessengerLink, User
from core.services import messengers, preferences, users
from web.auth import actor, auth_required
from web.schemas import PreferencesIn, PreferencesOut, UserOut, UserPatchIn

blp = Blueprint("users", __name__, url_prefix="/api/users", description="Users")
SECURITY = [{"bearer": []}]


class Profile:
    """A user as UserOut shows them: the row's attributes, and their linked messengers."""

    def __init__(self, user: User, messenger_links: dict[str, MessengerLink]) -> None:
        self.user = user
        self.messenger_links = messenger_links

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


def profile(session: Session, user: User) -> Profile:
    """The user with their links loaded, ready to be dumped after the session closes."""
    return Profile(user, messengers.links_of(session, user.id))


@blp.route("/me", methods=["GET"])
@auth_required
@blp.response(200, UserOut)
@blp.doc(security=SECURITY)
def me() -> Profile:
    """The signed-in user: balance, whether their address takes email, linked messengers."""
    with session_scope() as session:
        return profile(session, actor(session))


@blp.route("/me", methods=["PATCH"])
@auth_required
@blp.arguments(UserPatchIn())
@blp.response(200, UserOut)
@blp.doc(security=SECURITY)
def update_me(changes: dict[str, Any]) -> Profile:
    """Change the name or the locale; the email too, with the current password."""
    with session_scope() as session:
        return profile(session, users.update_profile(session, g.user_id, **changes))


@blp.route("/me/preferences", methods=["GET"])
@auth_required
@blp.response(200, PreferencesOut)
@blp.doc(security=SECURITY)
def get_preferences() -> dict[str, Any]:
    """Every notification type the user may receive, with each channel on or off."""
    with session_scope() as session:
        return {"preferences": preferences.describe(actor(session))}


@blp.route("/me/preferences", methods=["PATCH"])
@auth_required
@blp.arguments(PreferencesIn())
@blp.response(200, PreferencesOut)
@blp.doc(security=SECURITY)
def update_preferences(body: dict[str, Any]) -> dict[str, Any]:
    """Turn channels on or off per type, changing only what is named; required types stay on."""
    with session_scope() as session:
        user = preferences.update(session, g.user_id, body["preferences"])
        return {"preferences": preferences.describe(user)}
