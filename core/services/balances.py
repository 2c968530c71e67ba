"""Channel owners' balances: money added where it is stored, never onto a stale read."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from core.models import User

USERS = User.__table__


def credit(session: Session, user_id: str, amount: int) -> None:
    """Add `amount` (minor units) to the user's balance in SQL, as the row is when written.

    A statement of its own: a notification's statement updates the same users row (its seq),
    and PostgreSQL applies only one of two changes to a row within one statement. A User the
    session holds reads its balance again when next used.
    """
    session.execute(
        update(USERS).where(USERS.c.id == user_id).values(balance=USERS.c.balance + amount)
    )
    user = session.identity_map.get(identity_key(User, user_id))
    if user is not None:
        session.expire(user, ["balance"])
