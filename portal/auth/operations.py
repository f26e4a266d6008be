"""Authentication and user accounts: checking a login against the lockout, creating users and
setting passwords (used by the login page and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from portal import audit
from portal.auth import passwords
from portal.auth.login_protection import LoginProtection, normalize_username
from portal.models import PasswordHistory, Team, User
from portal.models.base import utcnow
from portal.models.enums import ROLES

INVALID_CREDENTIALS = _l("Invalid username or password.")

# Checked when the username is unknown, so the answer takes as long as for a real user.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """A user cannot be created or changed as asked (the message says why)."""


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    message: str = ""
    locked: bool = False

    @property
    def ok(self) -> bool:
        return self.user is not None


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(
        select(User).where(func.lower(User.username) == normalize_username(username))
    )


def attempt_login(session: Session, username: str, password: str,
                  protection: LoginProtection) -> LoginOutcome:
    """Check a username and password, honouring and updating the lockout.

    A locked account is refused before the password is looked at. A failure that reaches the
    limit locks the account and writes an audit row.
    """
    lock = protection.current_lock(username)
    if lock is not None:
        return LoginOutcome(None, lock.message, locked=True)
    user = find_user(session, username)
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is not None and valid and user.active:
        protection.record_success(username)
        user.last_login_at = utcnow()
        session.commit()
        return LoginOutcome(user)
    new_lock = protection.record_failure(username)
    if new_lock is not None:
        audit.record(session, user or normalize_username(username)[:100], "auth.lockout",
                     "user", user.id if user else None, None,
                     {"username": normalize_username(username),
                      "failures": protection.max_failures,
                      "locked_seconds": protection.lockout_seconds})
        session.commit()
    if user is not None and valid and not user.active:
        return LoginOutcome(None, gettext("This account is deactivated. Contact your "
                                          "administrator."))
    return LoginOutcome(None, INVALID_CREDENTIALS)


def check_password_strength(session: Session, password: str, user: User | None = None,
                            username: str | None = None) -> None:
    """Refuse a password the policy refuses (portal/auth/passwords.py)."""
    found = passwords.problems(session, user, password, passwords.policy_from_app(),
                               username=username)
    if found:
        raise AccountError(" ".join(found))


def create_user(session: Session, *, username: str, full_name: str, role: str, password: str,
                email: str | None = None, team_name: str | None = None,
                actor: User | str | None = None) -> User:
    username = normalize_username(username)
    if not username:
        raise AccountError("A username is required.")
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}; roles: {', '.join(ROLES)}.")
    if find_user(session, username) is not None:
        raise AccountError(f"User {username} already exists.")
    check_password_strength(session, password, username=username)
    team = None
    if team_name:
        team = session.scalar(select(Team).where(Team.name == team_name))
        if team is None:
            raise AccountError(f"No team named {team_name!r}.")
    user = User(username=username, full_name=full_name or username, role=role, email=email,
                team=team, password_hash=generate_password_hash(password), active=True)
    session.add(user)
    session.flush()
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    audit.record(session, actor, "user.create", "user", user.id, None,
                 {"username": username, "role": role, "team": team_name})
    return user


def set_password(session: Session, user: User, password: str,
                 actor: User | str | None = None) -> None:
    check_password_strength(session, password, user=user)
    passwords.set_password(session, user, password, passwords.policy_from_app(), actor=actor)


def set_language(session: Session, user: User, language: str) -> None:
    """The language ``user`` reads the portal in (portal/i18n.py); audited."""
    if user.language == language:
        return
    audit.record(session, user, "user.language_changed", "user", user.id,
                 before={"language": user.language}, after={"language": language})
    user.language = language
