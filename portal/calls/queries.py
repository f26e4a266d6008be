"""What the call pages read: the customer being worked, a call the user may see, the CALL
results, the numbers of a customer and their reference persons, and an agent's day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.calls import agent_status
from portal.calls.operations import agent_calls, day_bounds
from portal.models import (
    Action,
    ActionCode,
    AgentStatusEvent,
    CallRecord,
    Customer,
    Phone,
    ReferenceCustomer,
    User,
)
from portal.models.payments import ReconciliationRun
from portal.permissions.roles import can
from portal.permissions.scopes import may_access_case


def customer(session: Session, cif: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.cif == cif)) if cif else None


def workable_customer(session: Session, user: User, cif: str) -> Customer | None:
    """The customer ``cif`` if ``user`` may work their case (None: answer 404)."""
    if not cif or not may_access_case(session, user, cif):
        return None
    return customer(session, cif)


def visible_call(session: Session, user: User, call_id: str) -> CallRecord | None:
    """The call, if it is the user's own or the user supervises calls (None: answer 404)."""
    record = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    if record is None or (record.agent_id != user.id and not can("supervisor.board")):
        return None
    return record


def call_codes(session: Session, subtype: str | None = None) -> list[ActionCode]:
    """The active CALL results (those of ``subtype`` when it has any)."""
    codes = list(session.scalars(
        select(ActionCode).where(ActionCode.active.is_(True), ActionCode.type == "CALL")
        .order_by(ActionCode.sort_order, ActionCode.id)))
    if subtype:
        chosen = [c for c in codes if c.subtype == subtype]
        return chosen or codes
    return codes


def phones_of(session: Session, cif: str) -> list[tuple[Phone, str | None]]:
    """The customer's numbers (primary first), then their reference persons' with the name."""
    own = [(p, None) for p in session.scalars(
        select(Phone).where(Phone.cif == cif).order_by(Phone.is_primary.desc(), Phone.id))]
    refs = [(p, name) for p, name in session.execute(
        select(Phone, ReferenceCustomer.name)
        .join(ReferenceCustomer, ReferenceCustomer.ref_cif == Phone.ref_cif)
        .where(ReferenceCustomer.primary_cif == cif).order_by(Phone.id))]
    return own + refs


def visible_agents(session: Session, user: User) -> list[User]:
    """Whose calls the user may read: a supervisor's teams' agents, else the user."""
    if can("supervisor.board"):
        team_ids = agent_status.supervised_team_ids(session, user)
        return list(session.scalars(select(User).where(
            User.team_id.in_(team_ids), User.role == "agent").order_by(User.full_name)))
    return [user]


@dataclass
class AgentDay:
    records: list[CallRecord]
    actions: dict[int, Action]
    names: dict[str, str]
    run: ReconciliationRun | None
    status_events: list[AgentStatusEvent]
    summary: dict[str, int] = field(default_factory=dict)


def agent_day(session: Session, agent_id: int, day: date) -> AgentDay:
    """An agent's calls of one bank day, their actions and customers, the day's call-centre
    reconciliation, the agent's status changes and the day's totals."""
    records = agent_calls(session, agent_id, day)
    action_ids = [r.action_id for r in records if r.action_id]
    actions_by_id = {a.id: a for a in session.scalars(
        select(Action).where(Action.id.in_(action_ids)))} if action_ids else {}
    names = dict(session.execute(select(Customer.cif, Customer.name).where(
        Customer.cif.in_({r.cif for r in records if r.cif}))).all()) if records else {}
    run = session.scalar(select(ReconciliationRun).where(
        ReconciliationRun.integration == "CTI", ReconciliationRun.business_date == day)
        .order_by(ReconciliationRun.id.desc()).limit(1))
    start, end = day_bounds(day)
    status_events = [e for e in agent_status.history(session, agent_id, start) if e.at < end]
    answered = [r for r in records if r.answered_at]
    summary = {
        "calls": len(records), "answered": len(answered),
        "talk": sum(r.duration_s or 0 for r in answered),
        "pending": sum(1 for r in records if r.action_id and
                       actions_by_id.get(r.action_id) and
                       actions_by_id[r.action_id].result is None),
        "unmatched": sum(1 for r in records if r.unmatched_reason),
        "manual": sum(1 for r in records if r.source == "manual"),
        "breaches": sum(1 for r in records if r.window_breach),
    }
    return AgentDay(records, actions_by_id, names, run, status_events, summary)
