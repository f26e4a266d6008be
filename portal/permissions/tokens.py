"""API tokens for phones and external systems: created by an admin, shown once, stored as a
SHA-256 hash with a short visible prefix, scoped, revocable, optionally expiring."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.models import ApiToken, User
from portal.models.base import utcnow
from portal.permissions.roles import API_SCOPES, permissions_for_role

TOKEN_PREFIX = "crm_"
VISIBLE_PREFIX_LENGTH = 12  # "crm_" + 8 characters, enough to recognise a token in a list
LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most once a minute


class TokenError(ValueError):
    """A token cannot be created or revoked as asked (the message says why)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling the API: a user (session or token) or a system token."""

    kind: str  # "session" or "token"
    user_id: int | None
    username: str | None
    role: str | None
    scopes: tuple[str, ...]
    token_id: int | None = None
    token_name: str | None = None

    @classmethod
    def for_user(cls, user: User) -> Principal:
        scopes = tuple(s for s in API_SCOPES if s in permissions_for_role(user.role))
        return cls("session", user.id, user.username, user.role, scopes)


@dataclass
class AuthResult:
    ok: bool
    code: str = ""
    message: str = ""
    principal: Principal | None = None
    scopes: tuple[str, ...] = field(default_factory=tuple)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def validate_scopes(scopes: list[str] | tuple[str, ...], user: User | None) -> list[str]:
    """Known api.* scopes, without duplicates; a user's token cannot exceed the user's role."""
    cleaned = sorted({s.strip() for s in scopes if s and s.strip()})
    if not cleaned:
        raise TokenError(gettext("Choose at least one scope."))
    unknown = [s for s in cleaned if s not in API_SCOPES]
    if unknown:
        raise TokenError(gettext("Unknown scope(s): %(unknown)s. Known scopes: %(known)s.",
                                 unknown=", ".join(unknown), known=", ".join(API_SCOPES)))
    if user is not None:
        beyond = [s for s in cleaned if s not in permissions_for_role(user.role)]
        if beyond:
            raise TokenError(gettext("User %(username)s (%(role)s) may not hold: %(scopes)s.",
                                     username=user.username, role=user.role,
                                     scopes=", ".join(beyond)))
    return cleaned


def create_token(
    session: Session,
    *,
    name: str,
    scopes: list[str] | tuple[str, ...],
    user: User | None,
    created_by: User | str | None,
    expires_at: datetime | None = None,
    note: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the raw token, which is never stored or shown again.

    The caller commits (the audit row goes with it).
    """
    name = (name or "").strip()
    if not name:
        raise TokenError(gettext("Give the token a name (what or who uses it)."))
    if user is not None and not user.active:
        raise TokenError(gettext("User %(username)s is deactivated.", username=user.username))
    if expires_at is not None and expires_at <= utcnow():
        raise TokenError(gettext("The expiry must be in the future."))
    cleaned = validate_scopes(scopes, user)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name[:100],
        prefix=raw[:VISIBLE_PREFIX_LENGTH],
        token_hash=hash_token(raw),
        scopes=cleaned,
        user_id=user.id if user is not None else None,
        created_by_id=getattr(created_by, "id", None),
        expires_at=expires_at,
        note=note,
    )
    session.add(token)
    session.flush()
    audit.record(session, created_by, "api_token.create", "api_token", token.id, None,
                 describe(token))
    return token, raw


def revoke_token(session: Session, token: ApiToken, *, revoked_by: User | str | None) -> ApiToken:
    """Revoke a token (idempotent refusal: revoking twice is an error the caller can show)."""
    if token.revoked_at is not None:
        raise TokenError(gettext("Token %(prefix)s… was already revoked.", prefix=token.prefix))
    before = describe(token)
    token.revoked_at = utcnow()
    token.revoked_by_id = getattr(revoked_by, "id", None)
    audit.record(session, revoked_by, "api_token.revoke", "api_token", token.id, before,
                 describe(token))
    return token


def describe(token: ApiToken) -> dict:
    """What the audit log keeps of a token (never the secret or its hash)."""
    return {
        "name": token.name,
        "prefix": token.prefix,
        "scopes": list(token.scopes or []),
        "user_id": token.user_id,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    """"active", "revoked" or "expired"."""
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def authenticate(session: Session, raw: str) -> AuthResult:
    """Look a raw token up by its hash and say whether it may be used, and by whom."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(raw)))
    if token is None:
        return AuthResult(False, "invalid_token", "The API token is not valid.")
    now = utcnow()
    state = token_state(token, now)
    if state == "revoked":
        when = token.revoked_at.strftime("%Y-%m-%d %H:%M UTC")
        return AuthResult(False, "token_revoked",
                          f"The API token {token.prefix}… was revoked on {when}.")
    if state == "expired":
        when = token.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        return AuthResult(False, "token_expired",
                          f"The API token {token.prefix}… expired on {when}.")
    user = token.user
    if token.user_id is not None and (user is None or not user.active):
        return AuthResult(False, "user_inactive",
                          "The user this API token belongs to is deactivated.")
    scopes = tuple(token.scopes or [])
    if user is not None:  # a role change narrows the user's existing tokens too
        scopes = tuple(s for s in scopes if s in permissions_for_role(user.role))
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.commit()
    principal = Principal(
        "token",
        user.id if user is not None else None,
        user.username if user is not None else None,
        user.role if user is not None else None,
        scopes,
        token.id,
        token.name,
    )
    return AuthResult(True, principal=principal, scopes=scopes)


def list_tokens(session: Session, *, include_inactive: bool = True) -> list[ApiToken]:
    tokens = session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc(),
                                                       ApiToken.id.desc())).all()
    if include_inactive:
        return list(tokens)
    return [t for t in tokens if token_state(t) == "active"]


def find_token(session: Session, ident: str) -> ApiToken | None:
    """A token by numeric id or by its visible prefix."""
    ident = (ident or "").strip().rstrip("…")
    if ident.isdigit():
        return session.get(ApiToken, int(ident))
    matches = session.scalars(select(ApiToken).where(ApiToken.prefix == ident)).all()
    return matches[0] if len(matches) == 1 else None
