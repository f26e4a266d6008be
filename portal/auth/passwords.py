"""The password policy and the one way a password is set.

A password is refused when it is shorter than ``PASSWORD_MIN_LENGTH``, is on the list of
common passwords (``PASSWORD_COMMON_LIST``, by default portal/auth/common_passwords.txt,
compared in lower case), is the username, or is one of the user's last
``PASSWORD_REUSE_DEPTH`` passwords (their hashes are kept in ``password_history``).

``set_password`` writes the hash, keeps it in the history (trimmed to the depth) and writes the
audit row (never the password or its hash). An admin's reset sets a temporary password that the
user must change at the next sign-in (``User.must_change_password``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from flask import current_app
from flask_babel import gettext, ngettext
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from portal import audit
from portal.models import PasswordHistory, User

COMMON_LIST = Path(__file__).with_name("common_passwords.txt")
MAX_LENGTH = 256
# letters and digits that cannot be mistaken for each other when read out or copied by hand
_TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class PasswordError(ValueError):
    """A password change refused: ``field`` names the form field the message belongs next to."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@lru_cache(maxsize=4)
def load_common(path: str) -> frozenset[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines
                     if line.strip() and not line.startswith("#"))


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 10
    reuse_depth: int = 5
    common_list: str = str(COMMON_LIST)

    @property
    def common(self) -> frozenset[str]:
        return load_common(self.common_list)


def policy_from_app(app=None) -> PasswordPolicy:
    config = (app or current_app).config
    return PasswordPolicy(
        min_length=max(1, int(config.get("PASSWORD_MIN_LENGTH", 10))),
        reuse_depth=max(0, int(config.get("PASSWORD_REUSE_DEPTH", 5))),
        common_list=config.get("PASSWORD_COMMON_LIST") or str(COMMON_LIST),
    )


def problems(session: Session, user: User | None, password: str,
             policy: PasswordPolicy, username: str | None = None) -> list[str]:
    """What is wrong with ``password`` for ``user`` (empty: it may be used), in the reader's
    language."""
    password = password or ""
    found = []
    if len(password) < policy.min_length:
        found.append(ngettext("The password must have at least %(num)d character.",
                              "The password must have at least %(num)d characters.",
                              policy.min_length))
    elif len(password) > MAX_LENGTH:
        found.append(gettext("The password must have at most %(num)d characters.",
                             num=MAX_LENGTH))
    if password.lower() in policy.common:
        found.append(gettext("This password is on the list of common passwords. Choose one "
                             "that is harder to guess."))
    name = (username or (user.username if user is not None else "") or "").lower()
    if name and password.lower() == name:
        found.append(gettext("The password may not be the username."))
    reused = user is not None and user.id is not None and policy.reuse_depth and password and \
        any(check_password_hash(h, password) for h in recent_hashes(session, user, policy))
    if reused:
        found.append(gettext("This password was used recently: it is among your last %(num)d "
                             "passwords. Choose another one.", num=policy.reuse_depth))
    return found


def recent_hashes(session: Session, user: User, policy: PasswordPolicy) -> list[str]:
    hashes = list(session.scalars(
        select(PasswordHistory.password_hash).where(PasswordHistory.user_id == user.id)
        .order_by(PasswordHistory.created_at.desc(), PasswordHistory.id.desc())
        .limit(policy.reuse_depth)))
    if user.password_hash and user.password_hash not in hashes:
        hashes.insert(0, user.password_hash)  # the current one (set before the history began)
    return hashes[:max(policy.reuse_depth, 1)]


def set_password(session: Session, user: User, password: str, policy: PasswordPolicy, *,
                 actor, action: str = "user.set_password", temporary: bool = False) -> None:
    """Set ``user``'s password (checked by the caller with ``problems``), keep its hash in the
    history and write the audit row. ``temporary``: the user must change it at next sign-in."""
    user.password_hash = generate_password_hash(password)
    before = {"must_change_password": bool(user.must_change_password)}
    user.must_change_password = temporary
    session.flush()
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    session.flush()
    keep = select(PasswordHistory.id).where(PasswordHistory.user_id == user.id).order_by(
        PasswordHistory.created_at.desc(), PasswordHistory.id.desc()).limit(
        max(policy.reuse_depth, 1))
    session.execute(delete(PasswordHistory).where(PasswordHistory.user_id == user.id,
                                                  PasswordHistory.id.not_in(keep)))
    audit.record(session, actor, action, "user", user.id, before,
                 {"username": user.username, "must_change_password": temporary})


def temporary_password(policy: PasswordPolicy) -> str:
    """A random password for a new or reset account, shown once to the admin: four groups of
    four characters (at least the policy's length)."""
    length = max(16, policy.min_length)
    while True:
        raw = "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(length))
        candidate = "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))
        if candidate.lower() not in policy.common:
            return candidate


def change_own_password(session: Session, user: User, current: str, new: str,
                        policy: PasswordPolicy) -> None:
    """A user changes their own password (from the account menu, or forced after a reset)."""
    if not check_password_hash(user.password_hash, current or ""):
        raise PasswordError("current_password", gettext("The current password is not right."))
    found = problems(session, user, new, policy)
    if found:
        raise PasswordError("new_password", " ".join(found))
    set_password(session, user, new, policy, actor=user, action="user.password_change")
