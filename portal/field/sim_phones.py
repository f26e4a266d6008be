"""Phones for the phone simulator (``make run``): each active field agent gets a device token
(``phone-sim <username>``, older ones revoked, so a restart leaves one live token per agent)
and a route along the addresses of their open cases. The simulator runs as its own process and
asks for them with ``flask field sim-phones``, as a bank's MDM would hand phones their
credentials."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.field import locations
from portal.models import ApiToken, User
from portal.permissions import tokens as api_tokens

SIM_SCOPES = ["api.locations", "api.visits"]


def issue_sim_phones(session: Session, *, limit_agents: int = 50,
                     stops_per_agent: int = 6) -> list[dict]:
    """One phone per field agent with at least two stops: ``username``, ``token`` (raw, shown
    once), ``stops`` [[lat, lon], …] (from the agent's last plausible position, so a phone
    does not jump from the trail the portal holds: such a jump is implausible), ``protocol``
    (every third agent speaks OsmAnd, like Traccar Client) and ``seed`` (the agent id, so a
    route's noise is stable). Commits."""
    agents = session.scalars(select(User).where(
        User.role == "field_agent", User.active.is_(True)).order_by(User.id)
        .limit(limit_agents)).all()
    phones = []
    for n, agent in enumerate(agents):
        rows = session.execute(text("""
            SELECT DISTINCT ON (a.cif) a.lat, a.lon FROM cases c
            JOIN addresses a ON a.cif = c.cif AND a.lat IS NOT NULL
            WHERE c.assigned_field_agent_id = :a AND c.status <> 'closed'
            ORDER BY a.cif, a.is_primary DESC LIMIT :n"""),
            {"a": agent.id, "n": stops_per_agent}).all()
        stops = [[float(r.lat), float(r.lon)] for r in rows]
        if len(stops) < 2:
            continue
        last = locations.latest_position(session, agent.id)
        if last is not None:
            stops.insert(0, [float(last["lat"]), float(last["lon"])])
        name = f"phone-sim {agent.username}"
        for old in session.scalars(select(ApiToken).where(
                ApiToken.name == name, ApiToken.revoked_at.is_(None))):
            api_tokens.revoke_token(session, old, revoked_by="phone-sim")
        _, raw = api_tokens.create_token(session, name=name, scopes=SIM_SCOPES, user=agent,
                                         created_by="phone-sim")
        phones.append({"username": agent.username, "token": raw, "stops": stops,
                       "protocol": "osmand" if n % 3 == 2 else "json", "seed": agent.id})
    session.commit()
    return phones
