"""Users as an admin changes them: create (with a temporary password shown once), edit,
deactivate and reactivate, unlock after a lockout, reset the password. Every change writes an
audit row with what was before and after (never a password or a hash)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import audit
from portal.auth import passwords
from portal.auth.login_protection import LoginProtection, normalize_username
from portal.i18n import LANGUAGES
from portal.models import Team, User
from portal.models.enums import ROLES

EDITABLE = ("full_name", "email", "role", "team_id", "cti_agent_id", "phone_extension",
            "region", "language")


class AccountError(ValueError):
    """A change refused: ``field`` names the form field the message belongs next to."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class UserDetails:
    full_name: str
    role: str
    email: str | None = None
    team_id: int | None = None
    cti_agent_id: str | None = None
    phone_extension: str | None = None
    region: str | None = None
    language: str | None = None


def describe(user: User) -> dict:
    """What the audit row keeps of a user (no secret)."""
    return {"username": user.username, "full_name": user.full_name, "email": user.email,
            "role": user.role, "team_id": user.team_id,
            "team": user.team.name if user.team else None, "cti_agent_id": user.cti_agent_id,
            "phone_extension": user.phone_extension, "region": user.region,
            "language": user.language, "active": bool(user.active)}


def _check(session: Session, details: UserDetails, user: User | None) -> None:
    if details.role not in ROLES:
        raise AccountError("role", gettext("Choose a role from the list."))
    if details.language is not None and details.language not in LANGUAGES:
        raise AccountError("language", gettext("Choose a language from the list."))
    if details.team_id is not None and session.get(Team, details.team_id) is None:
        raise AccountError("team_id", gettext("Choose a team from the list."))
    for field, column, message in (
        ("cti_agent_id", User.cti_agent_id,
         gettext("Another user already has this call-centre id.")),
        ("phone_extension", User.phone_extension,
         gettext("Another user already has this phone extension.")),
    ):
        value = getattr(details, field)
        if value:
            query = select(User.id).where(column == value)
            if user is not None:
                query = query.where(User.id != user.id)
            if session.scalar(query) is not None:
                raise AccountError(field, message)


def _apply(session: Session, user: User, details: UserDetails) -> None:
    for name in EDITABLE:
        setattr(user, name, getattr(details, name) or None if name != "full_name"
                else details.full_name)
    user.role = details.role
    session.flush()
    session.refresh(user, ["team"])


def username_taken(session: Session, username: str) -> bool:
    return session.scalar(select(User.id).where(
        func.lower(User.username) == normalize_username(username))) is not None


def create_user(session: Session, actor: User, username: str, details: UserDetails,
                policy: passwords.PasswordPolicy) -> tuple[User, str]:
    """A new active user with a temporary password (returned, to be shown once) that must be
    changed at the first sign-in."""
    username = normalize_username(username)
    if username_taken(session, username):
        raise AccountError("username", gettext("This username is already taken."))
    _check(session, details, None)
    user = User(username=username, full_name=details.full_name, role=details.role,
                password_hash="!", active=True)
    session.add(user)
    _apply(session, user, details)
    audit.record(session, actor, "user.create", "user", user.id, None, describe(user))
    temporary = passwords.temporary_password(policy)
    passwords.set_password(session, user, temporary, policy, actor=actor,
                           action="user.temporary_password", temporary=True)
    return user, temporary


def update_user(session: Session, actor: User, user: User, details: UserDetails) -> bool:
    """Change a user's name, e-mail, role, team, call-centre id, extension and region; False
    when nothing changed (no audit row then)."""
    if user.id == actor.id and details.role != user.role:
        raise AccountError("role", gettext("You cannot change your own role."))
    _check(session, details, user)
    before = describe(user)
    _apply(session, user, details)
    return audit.record_changes(session, actor, "user.update", "user", user.id, before,
                                describe(user))


def deactivate(session: Session, actor: User, user: User) -> None:
    if user.id == actor.id:
        raise AccountError("active", gettext("You cannot deactivate your own account."))
    if not user.active:
        raise AccountError("active", gettext("This account is already deactivated."))
    user.active = False
    audit.record(session, actor, "user.deactivate", "user", user.id, {"active": True},
                 {"active": False, "username": user.username})


def reactivate(session: Session, actor: User, user: User) -> None:
    if user.active:
        raise AccountError("active", gettext("This account is already active."))
    user.active = True
    audit.record(session, actor, "user.reactivate", "user", user.id, {"active": False},
                 {"active": True, "username": user.username})


def unlock(session: Session, actor: User, user: User, protection: LoginProtection) -> None:
    """Lift a lockout after repeated failed sign-ins (the failures counted so far too)."""
    lock = protection.current_lock(user.username)
    failures = protection.failures(user.username)
    if lock is None and not failures:
        raise AccountError("locked", gettext("This account is not locked."))
    protection.unlock(user.username)
    audit.record(session, actor, "user.unlock", "user", user.id,
                 {"locked_seconds_left": lock.seconds_left if lock else 0,
                  "failures": failures}, {"username": user.username, "locked": False})


def reset_password(session: Session, actor: User, user: User,
                   policy: passwords.PasswordPolicy) -> str:
    """A new temporary password (returned, shown once) the user must change at next sign-in."""
    if user.id == actor.id:
        raise AccountError("password", gettext(
            "Change your own password from the account menu, not with a reset."))
    temporary = passwords.temporary_password(policy)
    passwords.set_password(session, user, temporary, policy, actor=actor,
                           action="user.password_reset", temporary=True)
    return temporary

