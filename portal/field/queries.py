"""What the field pages read: the teams and field agents a supervisor sees, the agents whose
visits they review, a visit locked for a decision, the VISIT results, and a field agent's day
(visits in route order, customers nearby, the points of the map)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.field import locations, visits
from portal.models import ActionCode, Team, User, Visit
from portal.permissions import scopes


def teams_in(session: Session, scope: list[int | None] | None) -> list[Team]:
    """The teams of ``scope`` by name (None: every team)."""
    query = select(Team).order_by(Team.name)
    if scope is not None:
        query = query.where(Team.id.in_([t for t in scope if t]))
    return list(session.scalars(query))


def field_agents(session: Session, team_id: int | None,
                 scope: list[int | None] | None = None) -> list[User]:
    """Active field agents of ``team_id``, or of every team in ``scope`` (None: all teams)."""
    query = select(User).where(User.role == "field_agent", User.active.is_(True))
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    elif scope is not None:
        query = query.where(scopes.members_of(scope))
    return list(session.scalars(query.order_by(User.full_name)))


def field_agent(session: Session, agent_id: int) -> User | None:
    """The user ``agent_id`` if they are a field agent (None: answer 404)."""
    agent = session.get(User, agent_id)
    return agent if agent is not None and agent.role == "field_agent" else None


def reviewable_agent_ids(session: Session, user: User) -> list[int] | None:
    """Agents whose visits ``user`` reviews: the members of their teams (None: every agent,
    an admin)."""
    scope = scopes.team_scope(session, user)
    if scope is None:
        return None
    return list(session.scalars(select(User.id).where(scopes.members_of(scope))))


def locked_visit(session: Session, visit_id: int) -> Visit | None:
    """The visit, its row locked until the commit: two decisions on it do not cross."""
    return session.scalar(select(Visit).where(Visit.id == visit_id).with_for_update())


def review_row(session: Session, visit: Visit) -> dict | None:
    """The visit's row of the review list (None: it no longer waits for a review)."""
    return next((r for r in visits.pending_reviews(session, agent_ids=[visit.agent_id])
                 if r["id"] == visit.id), None)


def visit_codes(session: Session) -> list[ActionCode]:
    """The active VISIT results, in their order."""
    return list(session.scalars(select(ActionCode).where(
        ActionCode.active.is_(True), ActionCode.type == "VISIT")
        .order_by(ActionCode.sort_order, ActionCode.id)))


def agent_day(session: Session, agent: User, day: date) -> dict:
    """The field agent's page of ``day``: their visits with the route order (``order_no``;
    unrouted visits last), the route, customers nearby, the latest position, the VISIT results
    and the points the page's map draws."""
    rows = visits.visits_for_day(session, day, agent_ids=[agent.id])
    route = visits.plan_my_day(session, agent, day)
    order = {vid: n for n, vid in enumerate(route["visit_ids"], 1)}
    found = visits.suggestions(session, agent)
    latest = locations.latest_position(session, agent.id)
    for row in rows:
        row["order_no"] = order.get(row["id"], len(order) + 1)
    by_id = {r["id"]: r for r in rows}
    me = {"lat": float(latest["lat"]), "lon": float(latest["lon"])} if latest else None
    map_points = {
        "me": me,
        "visits": [{"lat": float(r["lat"]), "lon": float(r["lon"]), "customer": r["customer_name"],
                    "order": order.get(r["id"], 0)} for r in rows if r["lat"] is not None],
        "route": [[float(by_id[i]["lat"]), float(by_id[i]["lon"])] for i in route["visit_ids"]],
        "suggestions": [{k: s[k] for k in ("lat", "lon", "name", "bucket", "distance_m")}
                        for s in found["customers"]],
    }
    return {"rows": rows, "route": route, "order": order, "suggestions": found,
            "latest": latest, "codes": visit_codes(session), "map_points": map_points}
