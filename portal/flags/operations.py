"""Reading and switching the feature flags (portal/flags/__init__.py says who a flag is on for).

``flag_on`` raises ``UnknownFlag`` for a name the registry does not know: a misspelt flag must
fail loudly, never read as "off". The states are read in one query and kept for the request
(``g``); ``set_flag`` forgets them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import g, has_app_context
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from portal import audit
from portal.extensions import db
from portal.flags.registry import FLAGS, UnknownFlag, get
from portal.models import AuditLog, FeatureFlag, FeatureFlagTeam, Team
from portal.models.base import utcnow
from portal.models.flags import FLAG_MODES

CACHE_KEY = "_feature_flags"
AUDIT_ENTITY = "feature_flag"
AUDIT_ACTION = "flags.set"
# the roles that oversee every team: a flag on for chosen teams is on for them
OVERSEEING_ROLES = frozenset({"admin", "ops", "auditor"})


@dataclass(frozen=True)
class FlagState:
    name: str
    mode: str = "all"  # all | teams | off
    team_ids: frozenset[int] = field(default_factory=frozenset)
    updated_at: datetime | None = None
    updated_by_id: int | None = None

    def on_for_team(self, team_id: int | None) -> bool:
        if self.mode == "all":
            return True
        return self.mode == "teams" and team_id is not None and team_id in self.team_ids


def _load(session: Session) -> dict[str, FlagState]:
    rows = {row.name: row for row in session.scalars(select(FeatureFlag))}
    teams: dict[str, set[int]] = {}
    for flag_name, team_id in session.execute(
            select(FeatureFlagTeam.flag_name, FeatureFlagTeam.team_id)):
        teams.setdefault(flag_name, set()).add(team_id)
    states = {}
    for name in FLAGS:
        row = rows.get(name)
        states[name] = FlagState(name) if row is None else FlagState(
            name, row.mode, frozenset(teams.get(name, ())), row.updated_at, row.updated_by_id)
    return states


def _cache() -> dict | None:
    """What this request (app context) has read already: {"states": …, "teams": {user id:
    team ids}}; None outside an app context."""
    if not has_app_context():
        return None
    cache = g.get(CACHE_KEY)
    if cache is None:
        cache = {"states": None, "teams": {}}
        setattr(g, CACHE_KEY, cache)
    return cache


def states(session: Session | None = None) -> dict[str, FlagState]:
    """{name: state} of every known flag (the request's copy when there is one)."""
    session = session or db.session
    cache = _cache()
    if cache is None:
        return _load(session)
    if cache["states"] is None:
        cache["states"] = _load(session)
    return cache["states"]


def forget() -> None:
    if has_app_context():
        g.pop(CACHE_KEY, None)


def state(name: str, session: Session | None = None) -> FlagState:
    get(name)
    return states(session)[name]


def _teams_of(session: Session, user: Any) -> set[int]:
    """The user's own team and the teams they supervise (read once per request)."""
    cache = _cache()
    key = (user.id, getattr(user, "team_id", None))
    if cache is not None and key in cache["teams"]:
        return cache["teams"][key]
    teams = set(session.scalars(select(Team.id).where(Team.supervisor_id == user.id)))
    if getattr(user, "team_id", None) is not None:
        teams.add(user.team_id)
    if cache is not None:
        cache["teams"][key] = teams
    return teams


def flag_on(name: str, user_or_team: Any, session: Session | None = None) -> bool:
    """Whether flag ``name`` is on for a user (a User), a team (a Team or its id) or, with
    None, for the system (jobs: on unless off for everyone). Raises UnknownFlag."""
    current = state(name, session)
    if current.mode == "all":
        return True
    if current.mode == "off":
        return False
    if user_or_team is None:
        return True
    if isinstance(user_or_team, int):
        return current.on_for_team(user_or_team)
    if isinstance(user_or_team, Team):
        return current.on_for_team(user_or_team.id)
    if getattr(user_or_team, "role", None) in OVERSEEING_ROLES:
        return True
    if not getattr(user_or_team, "is_authenticated", False) or \
            getattr(user_or_team, "id", None) is None:
        return False
    return bool(_teams_of(session or db.session, user_or_team) & current.team_ids)


def job_enabled(name: str, session: Session | None = None) -> bool:
    """Whether a background job of the flag's capability runs: unless the flag is off for
    everyone (on for chosen teams, the work those teams' users queued is done)."""
    return flag_on(name, None, session)


def describe(current: FlagState, team_names: dict[int, str]) -> dict:
    """The state as the audit log keeps it: mode and team names (sorted)."""
    return {"mode": current.mode,
            "teams": sorted(team_names.get(t, str(t)) for t in current.team_ids)}


def set_flag(session: Session, name: str, mode: str, team_ids: list[int] | None,
             actor: Any) -> tuple[dict, dict] | None:
    """Switch flag ``name`` to ``mode`` (all | teams | off; ``teams`` needs at least one team).
    Audited with before and after; returns them, or None when nothing changed. No commit.
    Raises UnknownFlag, or ValueError for a mode or teams that make no sense."""
    get(name)
    if mode not in FLAG_MODES:
        raise ValueError(f"unknown mode {mode!r}: one of {', '.join(FLAG_MODES)}")
    chosen = sorted(set(team_ids or ())) if mode == "teams" else []
    if mode == "teams" and not chosen:
        raise ValueError("mode 'teams' needs at least one team")
    team_names = dict(session.execute(select(Team.id, Team.name)).all())
    missing = [t for t in chosen if t not in team_names]
    if missing:
        raise ValueError(f"no team with id {', '.join(map(str, missing))}")
    before_state = _load(session)[name]
    after_state = FlagState(name, mode, frozenset(chosen))
    before, after = describe(before_state, team_names), describe(after_state, team_names)
    if before == after:
        return None
    row = session.get(FeatureFlag, name)
    if row is None:
        row = FeatureFlag(name=name)
        session.add(row)
    row.mode = mode
    row.updated_by_id = getattr(actor, "id", None)
    row.teams = [FeatureFlagTeam(flag_name=name, team_id=t) for t in chosen]
    row.updated_at = utcnow()
    audit.record(session, actor, AUDIT_ACTION, AUDIT_ENTITY, name, before, after)
    forget()
    return before, after


def last_changes(session: Session) -> dict[str, AuditLog]:
    """{flag name: its latest audit row} (who changed it and when)."""
    rows = session.scalars(
        select(AuditLog).where(AuditLog.entity_type == AUDIT_ENTITY)
        .ext(distinct_on(AuditLog.entity_id))
        .order_by(AuditLog.entity_id, AuditLog.at.desc(), AuditLog.id.desc()))
    return {row.entity_id: row for row in rows}


__all__ = ["FlagState", "UnknownFlag", "flag_on", "job_enabled", "last_changes", "set_flag",
           "state", "states"]
