"""What a user may reach: team scopes for lists and searches (SQL conditions), and one rule per
URL variable that names a team's object (OBJECT_RULES)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import g
from sqlalchemy import or_, select

from portal.extensions import db
from portal.models import CallRecord, Case, Document, Notification, Team, User, Visit

# --- object rules: which team's cases, visits, agents and calls a user may touch ----------------
#
# Users without a team count as one team of their own (a bank that has not split its agents
# into teams): they see each other's cases, and no team's supervisor sees theirs.


def team_scope(session: Any, user: Any) -> list[int | None] | None:
    """Teams whose cases, agents and visits ``user`` may see: None means every team (admin);
    anyone else the teams they supervise plus their own team (``None`` in the list: the users
    without a team)."""

    if user.role == "admin":
        return None
    conditions = [Team.supervisor_id == user.id]
    if user.team_id is not None:
        conditions.append(Team.id == user.team_id)
    teams: list[int | None] = list(session.scalars(
        select(Team.id).where(or_(*conditions)).order_by(Team.name)))
    return teams if user.team_id is not None else [*teams, None]


def supervised_team_ids(session: Any, user: Any) -> list[int] | None:
    """``team_scope`` without the users who have no team: real teams, by name (None: all)."""
    teams = team_scope(session, user)
    return None if teams is None else [t for t in teams if t is not None]


def members_of(teams: list[int | None]):
    """SQL condition on ``User`` for the members of ``teams`` (``None``: users without one)."""

    ids = [t for t in teams if t is not None]
    condition = User.team_id.in_(ids or [-1])
    return or_(condition, User.team_id.is_(None)) if None in teams else condition


def case_scope(session: Any, user: Any):
    """SQL condition on ``Case`` for the cases ``user`` may open (None: every case). A case
    belongs to the teams of its assigned agent and field agent; a case assigned to nobody
    belongs to no team yet and is open to every agent (so is a customer without a case)."""

    teams = team_scope(session, user)
    if teams is None:
        return None
    members = select(User.id).where(members_of(teams))
    return or_(
        Case.assigned_agent_id.is_(None) & Case.assigned_field_agent_id.is_(None),
        Case.assigned_agent_id == user.id, Case.assigned_field_agent_id == user.id,
        Case.assigned_agent_id.in_(members), Case.assigned_field_agent_id.in_(members),
    )


def cif_scope(session: Any, user: Any, column):
    """SQL condition on a ``cif`` column (customers, loans, cards, ...) for the customers
    ``user`` may open: those without a case, or whose case is in ``case_scope``. None: all
    (an admin; the API's system tokens, which have no user, pass None for ``user``)."""

    condition = case_scope(session, user) if user is not None else None
    if condition is None:
        return None
    return or_(column.not_in(select(Case.cif)), column.in_(select(Case.cif).where(condition)))


def principal_cif_scope(session: Any, principal: Any, column):
    """``cif_scope`` for an API principal (``g.api_principal``): a system token, which has no
    user, reads every customer."""

    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    return cif_scope(session, user, column)


def may_access_case(session: Any, user: Any, cif: str) -> bool:
    """Whether ``user`` may open and work the case of customer ``cif`` (see ``case_scope``);
    an unknown CIF or a customer without a case passes, for the view to answer 404 or show it."""

    condition = case_scope(session, user)
    if condition is None:
        return True
    exists = select(Case.id).where(Case.cif == cif)
    if session.scalar(exists) is None:
        return True
    return session.scalar(exists.where(condition)) is not None


def may_access_agent(session: Any, user: Any, agent_id: int) -> bool:
    """A user's own data, or (supervisor, admin) an agent of the teams they supervise."""

    if agent_id == user.id:
        return True
    if user.role not in ("supervisor", "admin"):
        return False
    agent = session.get(User, agent_id)
    if agent is None:
        return True  # the view answers 404
    teams = team_scope(session, user)
    return teams is None or agent.team_id in teams


def may_access_visit(session: Any, user: Any, visit_id: int) -> bool:
    """A field agent their own visits; a supervisor the visits of their teams' agents."""

    row = session.execute(select(Visit.agent_id).where(Visit.id == visit_id)).first()
    if row is None:
        return True  # the view answers 404
    return row.agent_id is not None and may_access_agent(session, user, row.agent_id)


def may_access_call(session: Any, user: Any, call_id: str) -> bool:
    """The agent's own calls; a supervisor the calls of their teams' agents."""

    row = session.execute(select(CallRecord.agent_id).where(CallRecord.call_id == call_id)
                          ).first()
    if row is None:
        return True  # the view answers 404
    return row.agent_id is not None and may_access_agent(session, user, row.agent_id)


def may_access_notification(session: Any, user: Any, notification_id: int) -> bool:
    """A notification is its recipient's alone."""

    owner = session.scalar(select(Notification.user_id).where(
        Notification.id == notification_id))
    return owner is None or owner == user.id


def may_access_document(session: Any, user: Any, document_id: int) -> bool:
    """A document goes with its customer's case (``may_access_case``)."""

    cif = session.scalar(select(Document.cif).where(Document.id == document_id))
    return cif is None or may_access_case(session, user, cif)


@dataclass(frozen=True)
class ObjectRule:
    noun: str  # what the URL variable names, for the refusal ("not_your_case")
    allows: Callable[[Any, Any, Any], bool]


# URL variable → the rule deciding whether a user may touch the object it names.
OBJECT_RULES: dict[str, ObjectRule] = {
    "cif": ObjectRule("case", may_access_case),
    "agent_id": ObjectRule("agent", may_access_agent),
    "visit_id": ObjectRule("visit", may_access_visit),
    "call_id": ObjectRule("call", may_access_call),
    "notification_id": ObjectRule("notification", may_access_notification),
    "document_id": ObjectRule("document", may_access_document),
}

# URL variables naming objects no team owns: the route's permission is the whole rule.
UNOWNED_URL_VARIABLES: dict[str, str] = {
    "kind": "contact kind (phone, address, email) or status list of the case named by <cif>",
    "value_id": "a value of a status list: workflow configuration, admin.workflow only",
    "contact_id": "a contact of the case named by <cif>: the view refuses one of another CIF",
    "name": "a case panel of <cif>, an integration / circuit breaker, a file of the print "
            "batch named by <batch_id> (ops only), or a feature flag (ops.flags to change it)",
    "code_id": "an action code: workflow configuration, admin.workflow only",
    "token_id": "an API token: admin.tokens only",
    "user_id": "a user account: admin.users only (admins reach every team's users)",
    "team_id": "a team: admin.teams only",
    "run_id": "an integration run: ops only",
    "discrepancy_id": "a reconciliation discrepancy: ops only",
    "import_id": "a camt file import: ops only",
    "agency_id": "a legal team or collection agency: admin.workflow only",
    "strategy_id": "a collection strategy, bank-wide: strategies.view / strategies.manage",
    "segment_id": "a segment of a bank-wide strategy: strategies.manage only",
    "step_id": "a step of a bank-wide strategy: strategies.manage only",
    "variant_id": "a champion or challenger of a bank-wide strategy: strategies.manage only",
    "filename": "a static file",
    "batch_id": "a print batch of letters: ops only",
    "token": "a pay link's signed, expiring token (the public pay page): the token is the rule",
    "ref_id": "a reference person of the case named by <cif>: the view refuses one of another CIF",
    "template_id": "a message template: messages.templates only (supervisors, admins)",
    "message_id": "a message, retried from the ops page: ops.actions only",
}


def refused_object(session: Any, user: Any, view_args: dict) -> str | None:
    """The noun of the first object named by ``view_args`` that ``user`` may not touch."""
    for name, value in view_args.items():
        rule = OBJECT_RULES.get(name)
        if rule is not None and not rule.allows(session, user, value):
            return rule.noun
    return None


def _refused_object(user: Any, view_args: dict) -> str | None:
    if not any(name in OBJECT_RULES for name in view_args):
        return None

    return refused_object(db.session, user, view_args)


def _refused_api_object(session_user: Any, view_args: dict) -> str | None:
    """``_refused_object`` for the API's principal: the session user, or the token's user (a
    system token, which has no user, reads every team's objects)."""
    if not any(name in OBJECT_RULES for name in view_args):
        return None
    user = session_user
    if user is None and g.api_principal.user_id is not None:
        user = db.session.get(User, g.api_principal.user_id)
    return _refused_object(user, view_args) if user is not None else None


def _refusal_message(noun: str) -> str:
    return (f"This {noun} belongs to another team or user: your role reaches only your "
            "own and your teams'.")
