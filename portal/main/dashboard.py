"""The numbers and lists of each role's home page, read from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from portal import clock
from portal.calls import agent_status
from portal.cases import queue
from portal.field import locations
from portal.models import (
    Action,
    Address,
    ApiToken,
    Case,
    Customer,
    Event,
    EventDelivery,
    IntegrationRun,
    IntegrationSetting,
    Promise,
    Team,
    User,
    Visit,
)
from portal.models.base import utcnow
from portal.models.enums import BUCKETS, INTEGRATIONS, ROLES
from portal.schedules import INTEGRATION_SCHEDULES, PUSH, Schedule, schedule_of

OPEN_CASE = queue.OPEN_CASE


def bucket_expression(dpd_column):
    """SQL CASE turning a dpd column into its bucket name (boundaries from models.enums)."""
    whens = []
    for name, low, high in BUCKETS:
        if high is None:
            whens.append((dpd_column >= low, literal(name)))
        else:
            whens.append((and_(dpd_column >= low, dpd_column <= high), literal(name)))
    return case(*whens, else_=literal(BUCKETS[-1][0]))


@dataclass
class BucketRow:
    bucket: str
    cases: int = 0
    overdue: Decimal = Decimal(0)


def cases_by_bucket(session: Session, *conditions) -> list[BucketRow]:
    """Open cases per DPD bucket (every bucket listed, empty ones with 0)."""
    bucket = bucket_expression(Case.max_dpd).label("bucket")
    rows = session.execute(
        select(bucket, func.count(Case.id), func.coalesce(func.sum(Case.total_overdue), 0))
        .where(OPEN_CASE, *conditions)
        .group_by(bucket)
    ).all()
    found = {name: BucketRow(name, count, overdue) for name, count, overdue in rows}
    return [found.get(name, BucketRow(name)) for name, _, _ in BUCKETS]


# --- agent -----------------------------------------------------------------------------------


@dataclass
class AgentHome:
    open_cases: int
    overdue_total: Decimal
    follow_ups_due: int
    buckets: list[BucketRow]
    promises_today: list = field(default_factory=list)
    promises_today_amount: Decimal = Decimal(0)
    broken_promises_30d: int = 0
    recent_actions: list = field(default_factory=list)


def agent_home(session: Session, user: User, today: date) -> AgentHome:
    mine = queue.held_by(user.id, "agent")
    open_cases, overdue = queue.held_counts(session, [user.id], "agent")[user.id]
    follow_ups = session.scalar(
        select(func.count(Case.id)).where(OPEN_CASE, mine, Case.next_action_at <= clock.now())
    )
    promises = session.execute(
        select(Promise, Customer.name)
        .join(Customer, Customer.cif == Promise.cif)
        .where(Promise.agent_id == user.id, Promise.status == "pending",
               Promise.promised_date == today)
        .order_by(Promise.amount.desc())
    ).all()
    broken = session.scalar(
        select(func.count(Promise.id)).where(
            Promise.agent_id == user.id, Promise.status == "broken",
            Promise.promised_date >= today - timedelta(days=30),
        )
    )
    actions = session.execute(
        select(Action, Customer.name)
        .join(Customer, Customer.cif == Action.cif)
        .where(Action.agent_id == user.id)
        .order_by(Action.at.desc())
        .limit(8)
    ).all()
    return AgentHome(
        open_cases=open_cases,
        overdue_total=overdue,
        follow_ups_due=follow_ups,
        buckets=cases_by_bucket(session, mine),
        promises_today=promises,
        promises_today_amount=sum((p.amount - p.paid_amount for p, _ in promises), Decimal(0)),
        broken_promises_30d=broken,
        recent_actions=actions,
    )


# --- field agent -----------------------------------------------------------------------------


@dataclass
class FieldHome:
    visits_today: list
    visits_done: int
    field_cases: list
    field_cases_count: int
    overdue_total: Decimal


def field_agent_home(session: Session, user: User, today: date) -> FieldHome:
    visits = session.execute(
        select(Visit, Customer.name, Address)
        .join(Customer, Customer.cif == Visit.cif)
        .outerjoin(Address, Address.id == Visit.address_id)
        .where(Visit.agent_id == user.id, Visit.planned_for == today)
        .order_by(Visit.status != "planned", Visit.id)
    ).all()
    done = sum(1 for v, _, _ in visits if v.status in ("checked_in", "completed"))
    mine = queue.held_by(user.id, "field_agent")
    count, overdue = queue.held_counts(session, [user.id], "field_agent")[user.id]
    cases = session.execute(
        select(Case, Customer.name)
        .join(Customer, Customer.cif == Case.cif)
        .where(OPEN_CASE, mine)
        .order_by(Case.priority.desc(), Case.max_dpd.desc())
        .limit(10)
    ).all()
    return FieldHome(visits, done, cases, count, overdue)


# --- supervisor ------------------------------------------------------------------------------


@dataclass
class MemberRow:
    user: User
    open_cases: int
    field_cases: int
    overdue: Decimal
    status: str | None  # a call agent's (agent_status.shown_status); None for a field agent
    presence: locations.Presence | None = None  # a field agent's (locations.presence)


@dataclass
class TeamBlock:
    team: Team
    members: list[MemberRow]

    @property
    def phone_cases(self) -> int:
        return sum(m.open_cases for m in self.members)

    @property
    def field_cases(self) -> int:
        return sum(m.field_cases for m in self.members)


@dataclass
class SupervisorHome:
    teams: list[TeamBlock]
    buckets: list[BucketRow]
    unassigned_cases: int
    promises_today: int

    @property
    def agent_count(self) -> int:
        return sum(len(t.members) for t in self.teams)

    @property
    def open_cases(self) -> int:
        """Distinct open cases held by the teams' agents (phone or field)."""
        return sum(b.cases for b in self.buckets)


def supervisor_home(session: Session, user: User, today: date) -> SupervisorHome:
    teams = session.scalars(
        select(Team).where(Team.supervisor_id == user.id).order_by(Team.name)
    ).all()
    members = [m for t in teams for m in t.members if m.id != user.id]
    member_ids = [m.id for m in members]
    # the one definition of each figure: held cases (queue.held_counts), a call agent's
    # status (agent_status.statuses), a field agent's presence (locations.presence, the map's)
    per_agent = queue.held_counts(session, member_ids, "agent")
    per_field = queue.held_counts(session, member_ids, "field_agent")
    call_agents = [m.id for m in members if m.role != "field_agent"]
    statuses = agent_status.statuses(session, call_agents) if call_agents else {}
    presence = locations.presence(
        session, [m.id for m in members if m.role == "field_agent"])
    blocks = []
    for team in teams:
        rows = [
            MemberRow(m, per_agent[m.id][0], per_field[m.id][0],
                      per_agent[m.id][1] + per_field[m.id][1],  # what the member holds
                      statuses.get(m.id),
                      presence.get(m.id, locations.Presence(None, False))
                      if m.role == "field_agent" else None)
            for m in team.members if m.id != user.id
        ]
        blocks.append(TeamBlock(team, rows))
    in_teams = or_(queue.held_by(member_ids, "agent"), queue.held_by(member_ids, "field_agent"))
    buckets = cases_by_bucket(session, in_teams) if member_ids else cases_by_bucket(
        session, literal(False))
    unassigned = session.scalar(
        select(func.count(Case.id)).where(OPEN_CASE, Case.assigned_agent_id.is_(None))
    )
    promises_today = session.scalar(
        select(func.count(Promise.id)).where(
            Promise.status == "pending", Promise.promised_date == today,
            Promise.agent_id.in_(member_ids) if member_ids else literal(False),
        )
    )
    return SupervisorHome(blocks, buckets, unassigned, promises_today)


# --- ops -------------------------------------------------------------------------------------


@dataclass
class IntegrationRow:
    integration: str
    setting: IntegrationSetting | None
    last_run: IntegrationRun | None
    failed_24h: int

    @property
    def enabled(self) -> bool | None:
        return None if self.setting is None else self.setting.enabled

    @property
    def schedule(self) -> tuple[str, datetime | None]:
        """(its schedule in words, the next run): what the worker's timetable says."""
        return schedule_in_words(self.integration)


def schedule_in_words(integration: str, now: datetime | None = None
                      ) -> tuple[str, datetime | None]:
    """What portal.schedules.integration_schedule says ("Synced daily at 01:30", "Real time;
    forwarded every minute", "Not scheduled"), in the reader's language; and the next run."""
    schedule = schedule_of(integration)
    if schedule is None:
        return _("Not scheduled"), None
    verb = INTEGRATION_SCHEDULES[integration.upper()][1]
    when = _when(schedule, now)
    words = {
        "synced": _("Synced %(when)s", when=when),
        "reconciled": _("Reconciled %(when)s", when=when),
        "forwarded": _("Forwarded %(when)s", when=when),
        "relayed": _("Relayed %(when)s", when=when),
        "assigned": _("Assigned %(when)s", when=when),
    }.get(verb) or f"{verb} {when}"
    if integration.upper() in PUSH:
        words = {
            "reconciled": _("Real time; reconciled %(when)s", when=when),
            "forwarded": _("Real time; forwarded %(when)s", when=when),
        }.get(verb) or words
    return words, schedule.next_run(now)


def _every_minutes(num: int) -> str:
    return _("every minute") if num == 1 else _("every %(num)s minutes", num=num)


def _when(schedule: Schedule, now: datetime | None) -> str:
    """Schedule.in_words in the reader's language (the same cases, the same bank time)."""
    timetable = _("on a timetable (cron %(cron)s, server time)", cron=schedule.cron)
    if schedule.interval:
        seconds = schedule.interval
        if seconds % 3600 == 0:
            return _("hourly") if seconds == 3600 else _("every %(num)s h", num=seconds // 3600)
        if seconds % 60 == 0:
            return _every_minutes(seconds // 60)
        return _("every %(num)s s", num=seconds)
    minute, hour, day, month, weekday = schedule.cron.split()
    if (day, month, weekday) != ("*", "*", "*"):
        return timetable
    if hour == "*" and minute == "*":
        return _every_minutes(1)
    if hour == "*" and minute.startswith("*/") and minute[2:].isdigit():
        return _every_minutes(int(minute[2:]))
    nxt = schedule.next_run(now).astimezone(clock.bank_zone())
    if hour == "*" and minute.isdigit():
        return _("hourly at :%(minute)s", minute=nxt.strftime("%M"))
    if hour.isdigit() and minute.isdigit():
        return _("daily at %(time)s", time=nxt.strftime("%H:%M"))
    return timetable


@dataclass
class OpsHome:
    integrations: list[IntegrationRow]
    unrelayed_events: int
    oldest_unrelayed_at: datetime | None
    deliveries_by_status: dict[str, int]

    @property
    def dead_deliveries(self) -> int:
        return self.deliveries_by_status.get("dead", 0)

    @property
    def failing_integrations(self) -> int:
        return sum(1 for r in self.integrations
                   if r.last_run is not None and r.last_run.status == "failed")


def ops_home(session: Session) -> OpsHome:
    settings = {s.integration: s for s in session.scalars(select(IntegrationSetting))}
    latest = session.scalars(
        select(IntegrationRun)
        .ext(distinct_on(IntegrationRun.integration))
        .order_by(IntegrationRun.integration, IntegrationRun.started_at.desc())
    ).all()
    last_runs = {r.integration: r for r in latest}
    failed = dict(session.execute(
        select(IntegrationRun.integration, func.count(IntegrationRun.id))
        .where(IntegrationRun.status == "failed",
               IntegrationRun.started_at >= utcnow() - timedelta(hours=24))
        .group_by(IntegrationRun.integration)
    ).all())
    rows = [IntegrationRow(name, settings.get(name), last_runs.get(name), failed.get(name, 0))
            for name in INTEGRATIONS]
    unrelayed, oldest = session.execute(
        select(func.count(Event.id), func.min(Event.occurred_at)).where(Event.relayed_at.is_(None))
    ).one()
    deliveries = dict(session.execute(
        select(EventDelivery.status, func.count(EventDelivery.id)).group_by(EventDelivery.status)
    ).all())
    return OpsHome(rows, unrelayed, oldest, deliveries)


# --- admin -----------------------------------------------------------------------------------


@dataclass
class AdminHome:
    users_by_role: list[tuple[str, int, int]]  # role, active, inactive
    active_tokens: list[ApiToken]
    recent_logins: list[User]

    @property
    def active_users(self) -> int:
        return sum(a for _, a, _ in self.users_by_role)


def admin_home(session: Session) -> AdminHome:
    counts = {
        (role, active): n
        for role, active, n in session.execute(
            select(User.role, User.active, func.count(User.id)).group_by(User.role, User.active)
        )
    }
    by_role = [(role, counts.get((role, True), 0), counts.get((role, False), 0))
               for role in ROLES]
    now = utcnow()
    tokens = session.scalars(
        select(ApiToken)
        .where(ApiToken.revoked_at.is_(None),
               or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))
        .order_by(ApiToken.created_at.desc())
    ).all()
    recent = session.scalars(
        select(User).where(User.last_login_at.is_not(None))
        .order_by(User.last_login_at.desc()).limit(6)
    ).all()
    return AdminHome(by_role, list(tokens), list(recent))
