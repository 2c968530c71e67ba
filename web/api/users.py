"""The signed-in user."""

from __future__ import annotations

from flask_smorest import Blueprint

from core.db import session_scope
from core.models import User
from web.auth import actor, auth_required
from web.schemas import UserOut

blp = Blueprint("users", __name__, url_prefix="/api/users", description="Users")


@blp.route("/me", methods=["GET"])
@auth_required
@blp.response(200, UserOut)
@blp.doc(security=[{"bearer": []}])
def me() -> User:
    """The signed-in user, with their balance."""
    with session_scope() as session:
        return actor(session)
