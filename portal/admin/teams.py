"""Teams as an admin changes them: create, rename, set the supervisor and the members. Every
change writes an audit row with the team before and after."""

from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import audit
from portal.admin.accounts import AccountError
from portal.models import Team, User

MEMBER_ROLES = ("agent", "field_agent", "supervisor")


def all_teams(session: Session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.name)))


def supervisors(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role == "supervisor",
                                                   User.active.is_(True))
                                .order_by(User.full_name)))


def possible_members(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role.in_(MEMBER_ROLES),
                                                   User.active.is_(True))
                                .order_by(User.full_name)))


def describe(team: Team) -> dict:
    return {"name": team.name, "region": team.region, "supervisor_id": team.supervisor_id,
            "supervisor": team.supervisor.username if team.supervisor else None,
            "members": sorted(u.username for u in team.members)}


def _name_taken(session: Session, name: str, team: Team | None) -> bool:
    query = select(Team.id).where(func.lower(Team.name) == name.strip().lower())
    if team is not None:
        query = query.where(Team.id != team.id)
    return session.scalar(query) is not None


def _apply(session: Session, team: Team, name: str, region: str | None,
           supervisor_id: int | None, member_ids: list[int]) -> None:
    name = (name or "").strip()
    if not name:
        raise AccountError("name", gettext("Give the team a name."))
    if _name_taken(session, name, team if team.id else None):
        raise AccountError("name", gettext("Another team already has this name."))
    if supervisor_id is not None:
        supervisor = session.get(User, supervisor_id)
        if supervisor is None or supervisor.role != "supervisor" or not supervisor.active:
            raise AccountError("supervisor_id", gettext("Choose a supervisor from the list."))
    members = list(session.scalars(select(User).where(User.id.in_(member_ids or [])))) \
        if member_ids else []
    if len(members) != len(set(member_ids or [])) or any(
            m.role not in MEMBER_ROLES for m in members):
        raise AccountError("member_ids", gettext("Choose the members from the list."))
    team.name, team.region, team.supervisor_id = name, (region or "").strip() or None, \
        supervisor_id
    session.add(team)
    session.flush()
    chosen = {m.id for m in members}
    for user in list(team.members):
        if user.id not in chosen:
            user.team_id = None
    for member in members:
        member.team_id = team.id
    session.flush()
    session.expire(team, ["members", "supervisor"])


def create_team(session: Session, actor: User, name: str, region: str | None = None,
                supervisor_id: int | None = None, member_ids: list[int] | None = None) -> Team:
    team = Team()
    _apply(session, team, name, region, supervisor_id, member_ids or [])
    audit.record(session, actor, "team.create", "team", team.id, None, describe(team))
    return team


def update_team(session: Session, actor: User, team: Team, name: str,
                region: str | None = None, supervisor_id: int | None = None,
                member_ids: list[int] | None = None) -> bool:
    before = describe(team)
    _apply(session, team, name, region, supervisor_id, member_ids or [])
    return audit.record_changes(session, actor, "team.update", "team", team.id, before,
                                describe(team))
