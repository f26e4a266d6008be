"""What the assignment page reads: the first page of matching cases with their customers' and
holders' names, the actor's agents with their open cases, and the teams to filter by."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.assignment import operations as assignment
from portal.assignment.operations import CaseFilter
from portal.models import Customer, Team, User
from portal.models.enums import BUCKET_NAMES


def index_page(session: Session, actor: User, case_filter: CaseFilter, *,
               limit: int) -> dict:
    """The assignment page's data (the template's names) for the cases ``case_filter`` finds."""
    teams = assignment.team_ids_for(session, actor)
    agents = assignment.assignable_agents(session, actor)
    cases, total = assignment.find_cases(session, actor, case_filter, limit=limit)
    holders = ({c.assigned_agent_id for c in cases} | {c.assigned_field_agent_id for c in cases}
               | {-1})
    names = dict(session.execute(select(User.id, User.full_name)
                                 .where(User.id.in_(holders))).all())
    loads = assignment.queue_counts(session, [a.id for a in agents if a.role == "agent"])
    loads.update(assignment.queue_counts(
        session, [a.id for a in agents if a.role == "field_agent"], role="field_agent"))
    customers = dict(session.execute(select(Customer.cif, Customer.name).where(
        Customer.cif.in_([c.cif for c in cases] or [""]))).all())
    team_rows = select(Team).order_by(Team.name)
    if teams is not None:
        team_rows = team_rows.where(Team.id.in_(teams or [-1]))
    return {"filter": case_filter, "cases": cases, "total": total, "agents": agents,
            "names": names, "customers": customers, "loads": loads,
            "teams": list(session.scalars(team_rows)), "buckets": BUCKET_NAMES,
            "strategies": assignment.STRATEGIES}
