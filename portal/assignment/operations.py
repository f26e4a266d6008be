"""Assignment of cases to call agents and field agents: single, bulk by filter, CSV upload
(validated per line before anything is applied) and automatic distribution.

Every change closes the case's open ``case_assignments`` row for that role and opens a new one
(the history), writes an audit row per case, and notifies each affected agent once per batch
(the agent receiving cases, and the agent losing them). Nothing here commits.

Scope: an admin may assign any case to any active agent; a supervisor only cases whose side
being assigned (call or field) is unassigned or held by an agent of the teams they supervise,
and only to those agents. Who holds a case is ``portal.cases.queue``'s definition (the same as
the home pages' and the work queue's counts).
"""

from __future__ import annotations

import csv
import heapq
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.cases import queue
from portal.field import geo as field_geo
from portal.i18n import format_number
from portal.labels import label
from portal.models import Address, AgentLocation, Case, CaseAssignment, User
from portal.models.enums import BUCKETS
from portal.notifications.messages import N_, counted, message
from portal.notifications.operations import notify
from portal.permissions import scopes

ROLE_COLUMNS = {"agent": "assigned_agent_id", "field_agent": "assigned_field_agent_id"}
ROLE_LABELS = {"agent": _l("call agent"), "field_agent": _l("field agent")}
ROLE_NAMES = {"agent": N_("call agent"), "field_agent": N_("field agent")}  # notifications
ROLE_PLURALS = {"agent": _l("call agents"), "field_agent": _l("field agents")}
CSV_MAX_LINES = 20_000
CSV_COLUMNS = ("cif", "agent")
STRATEGIES = ("balance", "round_robin")


class AssignmentError(ValueError):
    """The assignment cannot be made as asked (the message says why)."""


# --- who may assign what ---------------------------------------------------------------------


def team_ids_for(session: Session, actor: User) -> list[int] | None:
    """Teams whose agents ``actor`` may assign to: None means every team (admin)."""
    return scopes.supervised_team_ids(session, actor)


def assignable_agents(session: Session, actor: User, role: str | None = None,
                      team_id: int | None = None) -> list[User]:
    """Active call/field agents of the actor's teams (optionally one team / one role)."""
    roles = [role] if role else list(ROLE_COLUMNS)
    query = select(User).where(User.active.is_(True), User.role.in_(roles))
    teams = team_ids_for(session, actor)
    if teams is not None:
        query = query.where(User.team_id.in_(teams or [-1]))
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    return list(session.scalars(query.order_by(User.full_name)))


def check_team(session: Session, actor: User, team_id: int) -> None:
    """Refuse a team the actor does not supervise (an admin, or a supervisor of no team yet,
    may name any: the agents they may assign are limited anyway)."""
    teams = team_ids_for(session, actor)
    if teams and team_id not in teams:
        raise AssignmentError(_("That team is not one of yours."))


def _check_agent(session: Session, actor: User, agent: User | None) -> User:
    if agent is None:
        raise AssignmentError(_("Unknown agent."))
    if not agent.active:
        raise AssignmentError(_("%(name)s is deactivated.", name=agent.full_name))
    if agent.role not in ROLE_COLUMNS:
        raise AssignmentError(_("%(name)s is a %(role)s, not a call or field agent.",
                                name=agent.full_name, role=_role_word(agent.role)))
    teams = team_ids_for(session, actor)
    if teams is not None and agent.team_id not in teams:
        raise AssignmentError(_("%(name)s is not in one of your teams.", name=agent.full_name))
    return agent


def _role_word(role: str) -> str:
    """A user's role in a sentence ("is a supervisor"), in the reader's language."""
    return str(label(role, "role")).lower()


def _case_scope(session: Session, actor: User, role: str):
    """Condition limiting cases to those whose ``role`` side the actor may reassign: unassigned
    for that role, or held by an agent of the actor's teams (the other side does not matter:
    it is not changed)."""
    teams = team_ids_for(session, actor)
    if teams is None:
        return None
    own = select(User.id).where(User.team_id.in_(teams or [-1]))
    column = queue.holder_column(role)
    return or_(column.is_(None), column.in_(own))


# --- filters -----------------------------------------------------------------------------------


@dataclass
class CaseFilter:
    """Cases to act on in bulk. ``agent_id`` 0 means unassigned (for ``role``)."""

    role: str = "agent"
    agent_id: int | None = None
    team_id: int | None = None
    bucket: str | None = None
    status: str | None = None
    product: str | None = None
    province: str | None = None
    cifs: list[str] = field(default_factory=list)

    def statement(self, session: Session, actor: User):
        column = queue.holder_column(self.role)
        query = select(Case).where(queue.OPEN_CASE)
        scope = _case_scope(session, actor, self.role)
        if scope is not None:
            query = query.where(scope)
        if self.agent_id == 0:
            query = query.where(column.is_(None))
        elif self.agent_id:
            query = query.where(column == self.agent_id)
        if self.team_id:
            query = query.where(column.in_(select(User.id).where(User.team_id == self.team_id)))
        if self.bucket:
            low, high = next(((lo, hi) for name, lo, hi in BUCKETS if name == self.bucket),
                             (None, None))
            if low is not None:
                query = query.where(Case.max_dpd >= low)
                if high is not None:
                    query = query.where(Case.max_dpd <= high)
        if self.status:
            query = query.where(Case.status == self.status)
        if self.product:
            query = query.where(Case.products.any(self.product))
        if self.province:
            query = query.where(Case.cif.in_(select(Address.cif).where(
                Address.province == self.province)))
        if self.cifs:
            query = query.where(Case.cif.in_(self.cifs))
        return query


def find_cases(session: Session, actor: User, case_filter: CaseFilter, *, limit: int = 50,
               offset: int = 0) -> tuple[list[Case], int]:
    query = case_filter.statement(session, actor)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(session.scalars(query.order_by(Case.priority.desc(), Case.max_dpd.desc(),
                                               Case.id).limit(limit).offset(offset)))
    return rows, total


# --- the one way a case changes hands ------------------------------------------------------------


@dataclass
class BatchResult:
    role: str
    changed: int = 0
    unchanged: int = 0
    gained: Counter = field(default_factory=Counter)  # agent id -> cases received
    lost: Counter = field(default_factory=Counter)  # agent id -> cases taken away
    case_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        text = ngettext("%(num)d case assigned", "%(num)d cases assigned", self.changed)
        if self.unchanged:
            text += _(", %(num)d already with that agent", num=self.unchanged)
        return text


def assign_cases(session: Session, actor: User, plan: list[tuple[int, int | None]], *,
                 role: str, reason: str | None = None) -> BatchResult:
    """Apply ``plan`` = [(case id, agent id or None to unassign)] for ``role``, in one batch:
    history, one audit row per changed case, one notification per affected agent."""
    if role not in ROLE_COLUMNS:
        raise AssignmentError(_("Unknown role %(role)s.", role=repr(role)))
    column_name = ROLE_COLUMNS[role]
    column = getattr(Case, column_name)
    result = BatchResult(role)
    if not plan:
        return result
    targets = {agent_id for _, agent_id in plan if agent_id is not None}
    agents = {u.id: u for u in session.scalars(select(User).where(User.id.in_(targets)))}
    for agent_id in targets:
        agent = _check_agent(session, actor, agents.get(agent_id))
        if agent.role != role:
            raise AssignmentError(_("%(name)s is a %(role)s; choose a %(wanted)s.",
                                    name=agent.full_name, role=ROLE_LABELS[agent.role],
                                    wanted=ROLE_LABELS[role]))
    wanted = dict(plan)
    query = select(Case.id, Case.cif, column).where(Case.id.in_(wanted)).with_for_update()
    scope = _case_scope(session, actor, role)
    rows = session.execute(query).all()
    if len(rows) != len(wanted):
        raise AssignmentError(_("Some of the cases no longer exist."))
    if scope is not None:
        allowed = set(session.scalars(select(Case.id).where(Case.id.in_(wanted), scope)))
        refused = [cif for cid, cif, _holder in rows if cid not in allowed]
        if refused:
            raise AssignmentError(_("%(num)d case(s) are held by agents outside your teams "
                                    "(e.g. %(cif)s).", num=len(refused), cif=refused[0]))
    now = clock.now()
    history, audits = [], []
    by_target: dict[int | None, list[int]] = defaultdict(list)
    for case_id, cif, current in rows:
        target = wanted[case_id]
        if current == target:
            result.unchanged += 1
            continue
        by_target[target].append(case_id)
        result.changed += 1
        result.case_ids.append(case_id)
        if target is not None:
            result.gained[target] += 1
        if current is not None:
            result.lost[current] += 1
        history.append(CaseAssignment(case_id=case_id, role=role, agent_id=target,
                                      previous_agent_id=current, assigned_by_id=actor.id,
                                      assigned_at=now, reason=(reason or None) and reason[:200]))
        audits.append((case_id, cif, current, target))
    if not result.changed:
        return result
    changed = result.case_ids
    for i in range(0, len(changed), 5000):
        session.execute(update(CaseAssignment)
                        .where(CaseAssignment.case_id.in_(changed[i:i + 5000]),
                               CaseAssignment.role == role,
                               CaseAssignment.unassigned_at.is_(None))
                        .values(unassigned_at=now).execution_options(synchronize_session=False))
    for target, ids in by_target.items():
        for i in range(0, len(ids), 5000):
            session.execute(update(Case).where(Case.id.in_(ids[i:i + 5000]))
                            .values({column_name: target, "updated_at": now})
                            .execution_options(synchronize_session=False))
    session.add_all(history)
    for case_id, cif, current, target in audits:
        audit.record(session, actor, f"case.assign.{role}", "case", case_id,
                     {column_name: current, "cif": cif}, {column_name: target, "cif": cif,
                                                          "reason": reason})
    _notify(session, actor, result)
    return result


def _notify(session: Session, actor: User, result: BatchResult) -> None:
    names = dict(session.execute(select(User.id, User.full_name).where(
        User.id.in_(set(result.gained) | set(result.lost)))).all())
    role = message(ROLE_NAMES[result.role])  # in the reader's language when shown
    for agent_id, n in result.gained.items():
        notify(session, agent_id, "assignment",
               counted(N_("%(num)d case assigned to you"), N_("%(num)d cases assigned to you"), n),
               counted(N_("%(name)s assigned you %(num)d case as %(role)s."),
                       N_("%(name)s assigned you %(num)d cases as %(role)s."), n,
                       name=actor.full_name, role=role), link="/cases/queue")
    for agent_id, n in result.lost.items():
        if agent_id not in names:
            continue
        notify(session, agent_id, "assignment",
               counted(N_("%(num)d case moved out of your queue"),
                       N_("%(num)d cases moved out of your queue"), n),
               counted(N_("%(name)s reassigned %(num)d of your cases to another %(role)s."),
                       N_("%(name)s reassigned %(num)d of your cases to another %(role)s."), n,
                       name=actor.full_name, role=role))


def assign_filtered(session: Session, actor: User, case_filter: CaseFilter,
                    agent_id: int | None, *, reason: str | None = None,
                    case_ids: list[int] | None = None) -> BatchResult:
    """Bulk: every case matching ``case_filter`` (or only ``case_ids`` among them) to
    ``agent_id`` (None: unassign)."""
    query = case_filter.statement(session, actor).with_only_columns(Case.id)
    if case_ids is not None:
        query = query.where(Case.id.in_(case_ids or [-1]))
    ids = list(session.scalars(query))
    return assign_cases(session, actor, [(i, agent_id) for i in ids], role=case_filter.role,
                        reason=reason)


# --- CSV upload -------------------------------------------------------------------------------


@dataclass
class CsvLine:
    line: int
    cif: str
    agent: str
    reason: str | None = None
    error: str | None = None
    case_id: int | None = None
    agent_id: int | None = None
    role: str | None = None
    current_agent: str | None = None


@dataclass
class CsvPreview:
    lines: list[CsvLine]
    fatal: str | None = None

    @property
    def errors(self) -> list[CsvLine]:
        return [line for line in self.lines if line.error]

    @property
    def valid(self) -> list[CsvLine]:
        return [line for line in self.lines if not line.error]

    @property
    def ok(self) -> bool:
        return self.fatal is None and bool(self.lines) and not self.errors

    def per_agent(self) -> list[tuple[str, int]]:
        return Counter(line.agent for line in self.valid).most_common()


def preview_csv(session: Session, actor: User, content: str) -> CsvPreview:
    """Validate an upload (columns ``cif,agent`` with a header; agent = username) line by
    line without changing anything: unknown cif, unknown agent, agent outside the actor's
    teams or not a call/field agent, case held outside the actor's teams, duplicate cif."""
    content = content.lstrip("\ufeff")
    if "\x00" in content:  # no text column can hold it: a binary file, not a CSV
        return CsvPreview([], _("The file holds NUL characters: it is not a text CSV file."))
    reader = csv.reader(io.StringIO(content))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return CsvPreview([], _("The file is empty."))
    except csv.Error as exc:
        return CsvPreview([], _("Not a CSV file: %(error)s", error=exc))
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        return CsvPreview([], _("The first line must name the columns cif and agent "
                                "(missing: %(columns)s).", columns=", ".join(missing)))
    ci, ai = header.index("cif"), header.index("agent")
    ri = header.index("reason") if "reason" in header else None
    lines: list[CsvLine] = []
    try:
        start = reader.line_num + 1  # a quoted cell may span lines: name the line it starts on
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(lines) >= CSV_MAX_LINES:
                return CsvPreview([], _("Too many lines: at most %(num)s per file.",
                                        num=format_number(CSV_MAX_LINES)))
            lines.append(CsvLine(line, _cell(row, ci), _cell(row, ai), _cell(row, ri) or None))
    except csv.Error as exc:
        return CsvPreview([], _("Line %(num)d: %(error)s", num=reader.line_num, error=exc))
    cases = dict(session.execute(select(Case.cif, Case.id).where(
        Case.cif.in_({line.cif for line in lines if line.cif}))).all())
    users = {u.username.lower(): u for u in session.scalars(select(User).where(
        func.lower(User.username).in_({line.agent.lower() for line in lines if line.agent})))}
    teams = team_ids_for(session, actor)
    held_outside: dict[str, set[int]] = {role: set() for role in ROLE_COLUMNS}
    current: dict[int, tuple[int | None, int | None]] = {}
    if cases:
        for cid, agent_id, field_id in session.execute(select(
                Case.id, Case.assigned_agent_id, Case.assigned_field_agent_id)
                .where(Case.id.in_(cases.values()))):
            current[cid] = (agent_id, field_id)
        if teams is not None:
            for role in ROLE_COLUMNS:
                allowed = set(session.scalars(select(Case.id).where(
                    Case.id.in_(cases.values()), _case_scope(session, actor, role))))
                held_outside[role] = set(cases.values()) - allowed
    seen: dict[tuple[str, str], int] = {}
    for line in lines:
        if not line.cif:
            line.error = _("The cif is missing.")
            continue
        if not line.agent:
            line.error = _("The agent is missing.")
            continue
        case_id = cases.get(line.cif)
        if case_id is None:
            line.error = _("Unknown cif %(cif)s: no case for this customer.", cif=line.cif)
            continue
        agent = users.get(line.agent.lower())
        if agent is None:
            line.error = _("Unknown agent %(agent)s.", agent=line.agent)
            continue
        if agent.role not in ROLE_COLUMNS:
            line.error = _("%(name)s is a %(role)s, not a call or field agent.",
                           name=agent.username, role=_role_word(agent.role))
            continue
        if not agent.active:
            line.error = _("Agent %(name)s is deactivated.", name=agent.username)
            continue
        if teams is not None and agent.team_id not in teams:
            line.error = _("Agent %(name)s is in another team.", name=agent.username)
            continue
        if case_id in held_outside[agent.role]:
            line.error = _("Case %(cif)s is held by an agent outside your teams.", cif=line.cif)
            continue
        key = (line.cif, agent.role)
        if key in seen:
            line.error = _("Duplicate: cif %(cif)s already on line %(line)d.", cif=line.cif,
                           line=seen[key])
            continue
        seen[key] = line.line
        line.case_id, line.agent_id, line.role = case_id, agent.id, agent.role
    return CsvPreview(lines)


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def apply_csv(session: Session, actor: User, content: str, *,
              skip_invalid: bool = False) -> tuple[CsvPreview, list[BatchResult]]:
    """Validate again and apply, all or nothing: refused while any line is in error, unless
    ``skip_invalid`` (the supervisor chose to apply the valid lines only)."""
    preview = preview_csv(session, actor, content)
    if preview.fatal:
        raise AssignmentError(preview.fatal)
    if preview.errors and not skip_invalid:
        raise AssignmentError(_("%(num)d line(s) have errors; fix them or choose to apply the "
                                "valid lines only.", num=len(preview.errors)))
    if not preview.valid:
        raise AssignmentError(_("No valid line to apply."))
    results = []
    for role in ROLE_COLUMNS:
        plan = [(line.case_id, line.agent_id) for line in preview.valid if line.role == role]
        if plan:
            results.append(assign_cases(session, actor, plan, role=role,
                                        reason="CSV upload"))
    return preview, results


# --- automatic distribution ---------------------------------------------------------------


@dataclass
class DistributionPlan:
    role: str
    strategy: str
    plan: list[tuple[int, int]]
    load_before: dict[int, int]
    load_after: dict[int, int]
    unplaced: int = 0


def _open_load(session: Session, role: str, agent_ids: list[int]) -> dict[int, int]:
    return {agent_id: n for agent_id, (n, _oldest) in
            queue.held_counts(session, agent_ids, role).items()}


def plan_distribution(session: Session, actor: User, *, team_id: int, role: str = "agent",
                      strategy: str = "balance", case_filter: CaseFilter | None = None,
                      limit: int | None = None) -> DistributionPlan:
    """Who gets which unassigned case, without changing anything.

    Call agents: ``round_robin`` deals the cases in priority order to the team's agents in
    turn; ``balance`` gives each next case to the agent with the fewest open cases (ties by
    name), so loads end as even as the existing queues allow.
    Field agents: each case goes to the nearest field agent (from the customer's address with
    coordinates to the agent's latest GPS position), capped so loads stay balanced; without
    coordinates, an agent whose home region matches the address province, else the least
    loaded.
    """
    if strategy not in STRATEGIES:
        raise AssignmentError(_("Unknown strategy %(strategy)s.", strategy=repr(strategy)))
    agents = assignable_agents(session, actor, role=role, team_id=team_id)
    if not agents:
        raise AssignmentError(_("The team has no active %(role)s to distribute to.",
                                role=ROLE_PLURALS[role]))
    case_filter = case_filter or CaseFilter(role=role)
    case_filter.role, case_filter.agent_id = role, 0
    query = case_filter.statement(session, actor).with_only_columns(Case.id, Case.cif)
    query = query.order_by(Case.priority.desc(), Case.max_dpd.desc(), Case.id)
    if limit:
        query = query.limit(limit)
    cases = session.execute(query).all()
    ids = [a.id for a in agents]
    before = _open_load(session, role, ids)
    load = dict(before)
    plan: list[tuple[int, int]] = []
    if role == "field_agent":
        plan = _plan_field(session, agents, cases, load)
    elif strategy == "round_robin":
        for i, (case_id, _cif) in enumerate(cases):
            agent_id = ids[i % len(ids)]
            plan.append((case_id, agent_id))
            load[agent_id] += 1
    else:
        order = {a.id: i for i, a in enumerate(agents)}
        heap = [(load[a], order[a], a) for a in ids]
        heapq.heapify(heap)
        for case_id, _cif in cases:
            n, rank, agent_id = heapq.heappop(heap)
            plan.append((case_id, agent_id))
            load[agent_id] = n + 1
            heapq.heappush(heap, (n + 1, rank, agent_id))
    return DistributionPlan(role, strategy if role == "agent" else "nearest", plan, before,
                            load)


def _plan_field(session: Session, agents: list[User], cases, load: dict[int, int]):
    ids = [a.id for a in agents]
    positions: dict[int, tuple[float, float]] = {}
    latest = (select(AgentLocation.agent_id, AgentLocation.lat, AgentLocation.lon)
              .where(AgentLocation.agent_id.in_(ids),
                     AgentLocation.implausible_reason.is_(None))  # last plausible position
              .order_by(AgentLocation.agent_id, AgentLocation.recorded_at.desc())
              .ext(distinct_on(AgentLocation.agent_id)))
    for agent_id, lat, lon in session.execute(latest):
        positions[agent_id] = (float(lat), float(lon))
    cifs = [cif for _, cif in cases]
    addresses: dict[str, tuple[float | None, float | None, str | None]] = {}
    for cif, lat, lon, province in session.execute(
        select(Address.cif, Address.lat, Address.lon, Address.province)
        .where(Address.cif.in_(cifs or ["-"]))
        .order_by(Address.cif, Address.is_primary.desc(), (Address.lat.is_(None)), Address.id)
        .ext(distinct_on(Address.cif))
    ):
        addresses[cif] = (None if lat is None else float(lat), None if lon is None else float(lon),
                          province)
    cap = math.ceil((sum(load.values()) + len(cases)) / len(ids))
    region = {a.id: (a.region or "").strip().lower() for a in agents}
    plan = []
    for case_id, cif in cases:
        lat, lon, province = addresses.get(cif, (None, None, None))
        open_agents = [a for a in ids if load[a] < cap] or ids
        choice = None
        if lat is not None and lon is not None:
            located = [a for a in open_agents if a in positions]
            if located:
                choice = min(located, key=lambda a: (field_geo.distance_m(
                    lat, lon, *positions[a]), load[a]))
        if choice is None and province:
            local = [a for a in open_agents if region[a] and region[a] == province.lower()]
            if local:
                choice = min(local, key=lambda a: load[a])
        if choice is None:
            choice = min(open_agents, key=lambda a: load[a])
        plan.append((case_id, choice))
        load[choice] += 1
    return plan


def distribute(session: Session, actor: User, *, team_id: int, role: str = "agent",
               strategy: str = "balance", case_filter: CaseFilter | None = None,
               limit: int | None = None) -> tuple[DistributionPlan, BatchResult]:
    """Plan and apply the distribution to one of the actor's teams."""
    check_team(session, actor, team_id)
    plan = plan_distribution(session, actor, team_id=team_id, role=role, strategy=strategy,
                             case_filter=case_filter, limit=limit)
    result = assign_cases(session, actor, plan.plan, role=role,
                          reason=f"automatic distribution ({plan.strategy})")
    return plan, result


def reassign_case(session: Session, actor: User, case_id: int, agent_id: int,
                  reason: str) -> BatchResult:
    """One case, from the case view, to a call agent (its call side) or a field agent (its
    field side): ``assign_cases`` (the same checks, history, audit and notifications as the
    assignment page), with the reason the form requires."""
    if not (reason or "").strip():
        raise AssignmentError(_("Say why the case is reassigned."))
    agent = _check_agent(session, actor, session.get(User, agent_id))
    return assign_cases(session, actor, [(case_id, agent.id)], role=agent.role,
                        reason=reason.strip())


# The reasons the system writes (this module, Next case, the demo seed), shown in the reader's
# language; a reason a supervisor typed is shown as typed.
SYSTEM_REASONS = {
    "automatic distribution (balance)": _l("automatic distribution (balance)"),
    "automatic distribution (round_robin)": _l("automatic distribution (round robin)"),
    "automatic distribution (nearest)": _l("automatic distribution (nearest)"),
    "Taken from the shared pool with Next case": _l("Taken from the shared pool with Next "
                                                    "case"),
    "initial allocation": _l("initial allocation"),
    "bucket roll 61+": _l("bucket roll 61+"),
    "workload rebalancing": _l("workload rebalancing"),
}


@dataclass
class HistoryRow:
    """A ``case_assignments`` row with the names of the people it mentions."""

    row: CaseAssignment
    agent: str | None
    previous_agent: str | None
    assigned_by: str | None

    @property
    def reason(self) -> str | None:
        reason = self.row.reason
        return str(SYSTEM_REASONS[reason]) if reason in SYSTEM_REASONS else reason


def history_rows(session: Session, case_id: int) -> list[HistoryRow]:
    """``history`` (newest first) with the agents' and the assigner's names."""
    rows = history(session, case_id)
    ids = {i for r in rows for i in (r.agent_id, r.previous_agent_id, r.assigned_by_id)
           if i is not None}
    names = dict(session.execute(select(User.id, User.full_name)
                                 .where(User.id.in_(ids or {-1}))).all())
    return [HistoryRow(r, names.get(r.agent_id), names.get(r.previous_agent_id),
                       names.get(r.assigned_by_id)) for r in rows]


def history(session: Session, case_id: int) -> list[CaseAssignment]:
    return list(session.scalars(select(CaseAssignment).where(CaseAssignment.case_id == case_id)
                                .order_by(CaseAssignment.assigned_at.desc(),
                                          CaseAssignment.id.desc())))


def queue_counts(session: Session, agent_ids: list[int], role: str = "agent") -> dict[int, int]:
    return _open_load(session, role, agent_ids)

