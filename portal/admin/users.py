"""The users the admin pages list: everyone (by role and name), and the active ones a token
can belong to."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import User


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.full_name)))


def active_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.active.is_(True))
                                .order_by(User.full_name)))
