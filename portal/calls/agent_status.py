"""Agent status, both ways, and the supervisor's agent-status board.

- The agent sets available / break / offline in the portal: the choice is saved at once
  (history row, AGENT_STATUS_CHANGED), marked unsynced, then pushed to the call centre; when the
  call centre cannot be reached the choice stays, unsynced, and ``sync_pending`` (a job every
  30 s, workers/jobs/calls.py) pushes it until it is accepted.
- The call centre's changes (on_call, wrap_up, ...) arrive as ``agent.status_changed`` events.
  A change older than the current status (an event late or out of order) goes to the history
  only; the same change twice is recorded once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from integrations.callcentre.client import call_centre
from integrations.http import ApiError
from portal import clock
from portal.calls.cti_events import CtiEventError, _text
from portal.events import publish
from portal.models import (
    Action,
    ActionCode,
    AgentStatus,
    AgentStatusEvent,
    CallRecord,
    Customer,
    Team,
    User,
)
from portal.models.enums import AGENT_STATUSES
from portal.permissions import scopes

PORTAL_STATUSES = ("available", "break", "offline")  # what an agent may choose in the portal
STATUS_TONES = {"available": "green", "on_call": "blue", "wrap_up": "amber", "break": "amber",
                "offline": ""}
STATUS_LABELS = {"available": _l("Available"), "on_call": _l("On a call"),
                 "wrap_up": _l("Wrap-up"), "break": _l("On break"), "offline": _l("Offline")}


class StatusError(ValueError):
    pass


def current(session: Session, agent_id: int) -> AgentStatus | None:
    return session.get(AgentStatus, agent_id)


def shown_status(status: str | None) -> str:
    """THE status a page shows for a call agent: what the call centre (or the agent) last set;
    an agent never reported is offline."""
    return status or "offline"


def statuses(session: Session, agent_ids: list[int]) -> dict[int, str]:
    """{agent id: ``shown_status``} of every id given."""
    found = dict(session.execute(select(AgentStatus.agent_id, AgentStatus.status)
                                 .where(AgentStatus.agent_id.in_(agent_ids or [-1]))).all())
    return {agent_id: shown_status(found.get(agent_id)) for agent_id in agent_ids}


def _locked_row(session: Session, agent_id: int, at: datetime, source: str) -> tuple[
        AgentStatus, bool]:
    """The agent's status row, locked, in one statement; created offline (since ``at``) when
    missing. Returns (row, created)."""
    upsert = insert(AgentStatus).values(agent_id=agent_id, status="offline", since=at,
                                        source=source, synced=True)
    row, created = session.execute(
        upsert.on_conflict_do_update(index_elements=["agent_id"], set_={"agent_id": agent_id})
        .returning(AgentStatus, literal_column("xmax = 0")),
        execution_options={"populate_existing": True},
    ).one()
    return row, bool(created)


# The agent the call centre means by ``:agent_ref`` (its agent id, else an extension) or
# ``:extension``: a scalar subquery, written into the statements of every CTI event (the status
# change below, calls.MERGE_CALL_SQL) so that finding the agent costs no round trip of its own.
AGENT_BY_REF_SQL = """(
        SELECT u.id FROM users u
        WHERE u.cti_agent_id = CAST(:agent_ref AS varchar)
           OR u.phone_extension = CAST(:agent_ref AS varchar)
           OR u.phone_extension = CAST(:extension AS varchar)
        ORDER BY (u.cti_agent_id = CAST(:agent_ref AS varchar)) IS NOT TRUE,
                 (u.phone_extension = CAST(:agent_ref AS varchar)) IS NOT TRUE
        LIMIT 1)"""

# One statement per status change (it runs for every agent.status_changed event): lock the
# agent's row, record the change in the history unless it is a repeat, and make it current
# unless it is older than the current status (late events go to the history only).
CHANGE_SQL = text(f"""
WITH agent AS (
    SELECT COALESCE(CAST(:agent_id AS integer), {AGENT_BY_REF_SQL}) AS id,
           CASE WHEN CAST(:async_commit AS boolean)
                THEN set_config('synchronous_commit', 'off', true) END AS async_commit
), cur AS (
    SELECT agent_id, status, since FROM agent_status
    WHERE agent_id = (SELECT id FROM agent) FOR UPDATE
), dup AS (
    SELECT 1 FROM agent_status_events e
    WHERE e.agent_id = (SELECT id FROM agent) AND e.at = CAST(:at AS timestamptz)
      AND e.status = CAST(:status AS varchar) AND e.source = CAST(:source AS varchar)
    LIMIT 1
), hist AS (
    INSERT INTO agent_status_events (agent_id, status, previous_status, at, source, reason)
    SELECT cur.agent_id, CAST(:status AS varchar), cur.status, CAST(:at AS timestamptz),
           CAST(:source AS varchar), CAST(:reason AS varchar)
    FROM cur WHERE NOT EXISTS (SELECT 1 FROM dup)
    RETURNING id
), upd AS (
    UPDATE agent_status s
    SET status = CAST(:status AS varchar), since = CAST(:at AS timestamptz),
        source = CAST(:source AS varchar), synced = CAST(:synced AS boolean),
        sync_error = CASE WHEN CAST(:synced AS boolean) THEN NULL ELSE s.sync_error END,
        sync_attempts = CASE WHEN CAST(:synced AS boolean) THEN 0 ELSE s.sync_attempts END,
        current_call_id = CASE WHEN CAST(:status AS varchar) IN ('on_call', 'wrap_up')
                               THEN s.current_call_id END,
        current_cif = CASE WHEN CAST(:status AS varchar) IN ('on_call', 'wrap_up')
                           THEN s.current_cif END
    FROM cur
    WHERE s.agent_id = cur.agent_id AND NOT EXISTS (SELECT 1 FROM dup)
      AND CAST(:at AS timestamptz) >= cur.since
    RETURNING s.agent_id
)
SELECT a.id AS agent_id, a.async_commit, (SELECT status FROM cur) AS previous,
       EXISTS (SELECT 1 FROM cur) AS has_row, EXISTS (SELECT 1 FROM upd) AS applied
FROM agent a
""")


def change(session: Session, agent_id: int | None, status: str, *, source: str,
           at: datetime, reason: str | None = None, synced: bool = True,
           agent_ref: str | None = None, extension: str | None = None,
           async_commit: bool = False) -> tuple[int | None, str | None, bool]:
    """Record a status change of ``agent_id`` (or of the agent with the call centre's
    ``agent_ref`` / ``extension``); returns (agent id, None when unknown; the agent's current
    status; whether it changed). No commit."""
    if status not in AGENT_STATUSES:
        raise StatusError(f"unknown status {status!r}")
    params = {"agent_id": agent_id, "agent_ref": agent_ref, "extension": extension,
              "status": status, "at": at, "source": source, "reason": reason,
              "synced": synced, "async_commit": async_commit}
    result = session.execute(CHANGE_SQL, params).one()
    agent_id = result.agent_id
    if agent_id is None:
        return None, None, False
    previous, applied = result.previous, result.applied
    if not result.has_row:  # the agent's first status
        table = AgentStatus.__table__
        created = session.execute(
            insert(table).values(agent_id=agent_id, status=status, since=at, source=source,
                                 synced=synced)
            .on_conflict_do_nothing(index_elements=["agent_id"]).returning(table.c.agent_id)
        ).scalar() is not None
        if created:
            session.execute(insert(AgentStatusEvent.__table__).values(
                agent_id=agent_id, status=status, previous_status=None, at=at, source=source,
                reason=reason))
            previous, applied = None, True
        else:  # someone else created it meanwhile
            result = session.execute(CHANGE_SQL, {**params, "agent_id": agent_id}).one()
            previous, applied = result.previous, result.applied
    if not applied:
        return agent_id, previous, False
    changed = previous != status
    if changed:
        publish("AGENT_STATUS_CHANGED",
                {"agent_id": agent_id, "status": status, "since": at.astimezone(UTC).isoformat(),
                 "previous_status": previous, "source": source},
                session=session, occurred_at=at)
    return agent_id, status, changed


def set_from_portal(session: Session, agent: User, status: str,
                    now: datetime | None = None) -> AgentStatus:
    """The agent's own choice: saved now, unsynced until the call centre accepts it."""
    if status not in PORTAL_STATUSES:
        raise StatusError(_("Choose available, break or offline."))
    change(session, agent.id, status, source="portal", at=now or clock.now(), synced=False)
    return session.get(AgentStatus, agent.id, populate_existing=True)


def choose(session: Session, agent: User, status: str, config,
           now: datetime | None = None) -> AgentStatus:
    """The agent's own choice, committed, then sent to the configured call centre (its answer
    committed too: a refused push leaves the choice saved and unsynced). Raises StatusError
    before anything is saved."""
    row = set_from_portal(session, agent, status, now)
    session.commit()
    with call_centre(config) as client:
        push(session, row, client)
    session.commit()
    return row


def push(session: Session, row: AgentStatus, client, now: datetime | None = None) -> bool:
    """Send ``row``'s status to the call centre; marks it synced, or records the failure.
    No commit."""

    agent = session.get(User, row.agent_id)
    ref = agent.cti_agent_id or agent.phone_extension if agent else None
    row.last_sync_at = now or clock.now()
    if not ref:
        row.sync_error = "no call-centre agent id or extension"
        row.sync_attempts += 1
        return False
    if client is None:
        row.sync_error = "no call centre configured"
        row.sync_attempts += 1
        return False
    try:
        client.set_agent_status(ref, row.status)
    except ApiError as exc:
        row.sync_error = str(exc)[:200]
        row.sync_attempts += 1
        return False
    row.synced = True
    row.sync_error = None
    return True


def sync_pending(session: Session, client, now: datetime | None = None,
                 limit: int = 500) -> dict[str, int]:
    """Push every unsynced status (oldest first); commits each agent on its own."""
    ids = list(session.scalars(select(AgentStatus.agent_id).where(AgentStatus.synced.is_(False))
                               .order_by(AgentStatus.since).limit(limit)))
    done = failed = 0
    for agent_id in ids:
        row = session.scalar(select(AgentStatus).where(AgentStatus.agent_id == agent_id,
                                                       AgentStatus.synced.is_(False))
                             .with_for_update(skip_locked=True))
        if row is None:
            continue
        if push(session, row, client, now):
            done += 1
        else:
            failed += 1
        session.commit()
    return {"pending": len(ids), "synced": done, "failed": failed}


def apply_cti_event(session: Session, event, *, async_commit: bool = False) -> dict:
    """``agent.status_changed`` from the call centre."""

    data = event.data
    status = _text(data, "status", 16, required=True)
    if status not in AGENT_STATUSES:
        raise CtiEventError("bad_field", f"data.status must be one of {', '.join(AGENT_STATUSES)}",
                            "data.status")
    agent_ref = _text(data, "agent_id", 64)
    extension = _text(data, "extension", 20)
    if not agent_ref and not extension:
        raise CtiEventError("missing_field", "data.agent_id or data.extension is required",
                            "data.agent_id")
    agent_id, current_status, changed = change(
        session, None, status, source="cti", at=event.occurred_at,
        reason=_text(data, "reason", 200), agent_ref=agent_ref, extension=extension,
        async_commit=async_commit)
    if agent_id is None:
        return {"accepted": True, "event_id": event.event_id, "ignored": "unknown_agent"}
    return {"accepted": True, "event_id": event.event_id, "agent_id": agent_id,
            "status": current_status, "changed": changed}


def set_current_call(session: Session, agent_id: int, call_id: str, cif: str | None,
                     at: datetime) -> None:
    """The agent is on ``call_id`` (a call event came before any status of the agent: the
    agent is on that call since ``at``)."""
    table = AgentStatus.__table__
    done = session.execute(
        update(table).where(table.c.agent_id == agent_id)
        .values(current_call_id=call_id, current_cif=cif)
    ).rowcount
    if not done:
        row, created = _locked_row(session, agent_id, at, "cti")
        if created:
            row.status = "on_call"
        row.current_call_id, row.current_cif = call_id, cif


def history(session: Session, agent_id: int, since: datetime,
            limit: int = 200) -> list[AgentStatusEvent]:
    return list(session.scalars(
        select(AgentStatusEvent).where(AgentStatusEvent.agent_id == agent_id,
                                       AgentStatusEvent.at >= since)
        .order_by(AgentStatusEvent.at.desc(), AgentStatusEvent.id.desc()).limit(limit)))


# -- the supervisor's board ---------------------------------------------------------------------


def stuck_thresholds(raw: str | dict | None) -> dict[str, int]:
    """``"on_call=20,wrap_up=5,break=20"`` → minutes per status."""
    if isinstance(raw, dict):
        return {k: int(v) for k, v in raw.items()}
    result: dict[str, int] = {}
    for part in (raw or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() in AGENT_STATUSES and value.strip().isdigit():
            result[name.strip()] = int(value)
    return result


@dataclass
class BoardRow:
    agent_id: int
    name: str
    username: str
    team_id: int | None
    team: str | None
    extension: str | None
    status: str
    since: datetime | None
    synced: bool
    call_id: str | None
    cif: str | None
    customer: str | None
    calls: int = 0
    answered: int = 0
    talk_seconds: int = 0
    rpc: int = 0
    promises: int = 0
    breaches: int = 0  # today's outbound calls outside the contact window
    seconds_in_status: int = 0
    stuck: bool = False

    @property
    def time_label(self) -> str:
        return duration_label(self.seconds_in_status)

    @property
    def talk_label(self) -> str:
        return duration_label(self.talk_seconds) if self.talk_seconds else "—"


def duration_label(seconds: int) -> str:
    """45 s · 12 min · 2 h 05 min (in the page's language)"""
    if seconds >= 3600:
        return _("%(hours)s h %(minutes)s min", hours=seconds // 3600,
                 minutes=f"{(seconds % 3600) // 60:02d}")
    if seconds >= 60:
        return _("%(minutes)s min", minutes=seconds // 60)
    return _("%(seconds)s s", seconds=seconds)


@dataclass
class Board:
    rows: list[BoardRow]
    teams: list[Team]
    counts: dict[str, int]
    totals: dict[str, int]
    sort: str
    direction: str
    thresholds: dict[str, int] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def talk_label(self) -> str:
        return duration_label(self.totals.get("talk_seconds", 0))


SORTS = {
    "name": lambda r: (r.name.lower(),),
    "team": lambda r: ((r.team or "").lower(), r.name.lower()),
    "status": lambda r: (AGENT_STATUSES.index(r.status), -r.seconds_in_status),
    "time": lambda r: (r.seconds_in_status,),
    "calls": lambda r: (r.calls, r.name.lower()),
    "talk": lambda r: (r.talk_seconds, r.name.lower()),
    "rpc": lambda r: (r.rpc, r.name.lower()),
    "promises": lambda r: (r.promises, r.name.lower()),
    "breaches": lambda r: (r.breaches, r.name.lower()),
}


def supervised_team_ids(session: Session, supervisor: User) -> list[int]:
    """The teams on the supervisor's board (``scopes.team_scope``)."""
    return scopes.supervised_team_ids(session, supervisor) or []


def board(session: Session, supervisor: User, *, team_id: int | None = None,
          status: str | None = None, sort: str = "status", direction: str = "asc",
          thresholds: dict[str, int] | None = None, now: datetime | None = None) -> Board:
    """Every agent of the supervisor's teams: status and for how long, current call and
    customer, today's calls, talk time, outbound calls outside the contact window, right-party
    contacts and promises. Four queries."""
    now = now or clock.now()
    thresholds = thresholds or {}
    team_ids = supervised_team_ids(session, supervisor)
    teams = list(session.scalars(select(Team).where(Team.id.in_(team_ids)).order_by(Team.name)))
    shown_teams = [team_id] if team_id in team_ids else team_ids
    rows: list[BoardRow] = []
    for (uid, name, username, tid, tname, ext, st, since, synced, call_id, cif,
         customer) in session.execute(
        select(User.id, User.full_name, User.username, User.team_id, Team.name,
               User.phone_extension, AgentStatus.status, AgentStatus.since, AgentStatus.synced,
               AgentStatus.current_call_id, AgentStatus.current_cif, Customer.name)
        .join(Team, Team.id == User.team_id)
        .outerjoin(AgentStatus, AgentStatus.agent_id == User.id)
        .outerjoin(Customer, Customer.cif == AgentStatus.current_cif)
        .where(User.team_id.in_(shown_teams), User.role == "agent", User.active.is_(True))
    ):
        st = shown_status(st)
        seconds = int((now - since).total_seconds()) if since else 0
        limit = thresholds.get(st)
        rows.append(BoardRow(uid, name, username, tid, tname, ext, st, since,
                             True if synced is None else synced, call_id, cif, customer,
                             seconds_in_status=max(0, seconds),
                             stuck=bool(limit and since and seconds > limit * 60)))
    counts = {s: 0 for s in AGENT_STATUSES}
    for row in rows:
        counts[row.status] += 1
    if status in AGENT_STATUSES:
        rows = [r for r in rows if r.status == status]
    ids = [r.agent_id for r in rows]
    if ids:
        day_start = datetime.combine(clock.bank_today(now), datetime.min.time(),
                                     tzinfo=clock.bank_zone()).astimezone(UTC)
        by_id = {r.agent_id: r for r in rows}
        for agent_id, calls, answered, talk, breaches in session.execute(
            select(CallRecord.agent_id, func.count(),
                   func.count(CallRecord.answered_at),
                   func.coalesce(func.sum(case((CallRecord.answered_at.is_not(None),
                                                CallRecord.duration_s), else_=0)), 0),
                   func.count(CallRecord.window_breach))
            .where(CallRecord.agent_id.in_(ids), CallRecord.started_at >= day_start,
                   CallRecord.started_at < now + timedelta(minutes=1))
            .group_by(CallRecord.agent_id)
        ):
            row = by_id[agent_id]
            row.calls, row.answered, row.talk_seconds = calls, answered, int(talk or 0)
            row.breaches = breaches
        for agent_id, rpc, promises in session.execute(
            select(Action.agent_id,
                   func.count().filter(ActionCode.is_contact.is_(True)),
                   func.count().filter(ActionCode.is_promise.is_(True)))
            .join(ActionCode, and_(ActionCode.id == Action.action_code_id))
            .where(Action.agent_id.in_(ids), Action.at >= day_start)
            .group_by(Action.agent_id)
        ):
            row = by_id[agent_id]
            row.rpc, row.promises = rpc, promises
    key = SORTS.get(sort) or SORTS["status"]
    rows.sort(key=key, reverse=direction == "desc")
    totals = {"agents": len(rows), "calls": sum(r.calls for r in rows),
              "talk_seconds": sum(r.talk_seconds for r in rows),
              "rpc": sum(r.rpc for r in rows), "promises": sum(r.promises for r in rows),
              "breaches": sum(r.breaches for r in rows),
              "stuck": sum(1 for r in rows if r.stuck),
              "unsynced": sum(1 for r in rows if not r.synced)}
    return Board(rows, teams, counts, totals, sort if sort in SORTS else "status", direction,
                 thresholds, {"team_id": team_id, "status": status})
