"""Signed-in sessions: each login gets a random session id (``sid``) in its cookie, and a logout
revokes that id server-side, so a copy of the cookie taken before the logout no longer signs
anyone in (the cookie itself cannot be recalled: Flask keeps sessions in signed cookies).

Revoked ids are kept in Redis until the session would have expired anyway. When Redis cannot be
reached the check lets the session through (the portal keeps working without Redis; the
cookie's lifetime still bounds it) and logs a warning; a logout during the outage is then
only a local one.
"""

from __future__ import annotations

import logging
import secrets

from flask import current_app, session
from redis import RedisError

from portal.extensions import get_redis

log = logging.getLogger(__name__)

SESSION_ID_BYTES = 16
REVOKED_KEY = "portal:session:revoked:{}"


def start() -> None:
    """A fresh session for a login: nothing of the anonymous session survives (no session
    fixation: its CSRF token and anything planted in it are gone), and the new one gets a
    random id, so two logins never share a cookie value (docs/security.md)."""
    session.clear()
    session["sid"] = secrets.token_urlsafe(SESSION_ID_BYTES)


def _lifetime_seconds() -> int:
    return max(1, int(current_app.permanent_session_lifetime.total_seconds()))


def revoke_current() -> bool:
    """Revoke the current session's id (at logout) and clear the session. Returns whether the
    revocation was recorded server-side."""
    sid = session.get("sid")
    session.clear()
    if not sid:
        return False
    try:
        get_redis().set(REVOKED_KEY.format(sid), "1", ex=_lifetime_seconds())
    except RedisError:
        log.warning("session revocation not recorded: Redis unreachable", exc_info=True)
        return False
    return True


def is_revoked(sid: str | None) -> bool:
    """Whether the session id was signed out (False for a session without an id)."""
    if not sid:
        return False
    try:
        return bool(get_redis().exists(REVOKED_KEY.format(sid)))
    except RedisError:
        log.warning("session revocation not checked: Redis unreachable")
        return False
