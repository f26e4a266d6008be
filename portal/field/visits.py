"""Visits: planning, check-in with location verification, supervisor review, outcome, nearby
customers to suggest, and ordering a day's visits into a short route.

Verification of a check-in: an implausible check-in position (outside the service area, or too
fast from the agent's neighbouring positions: portal/field/plausibility.py) is never verified —
it waits for a supervisor (``manual_pending``); else the GPS system's own decision when it
answers (``remote``; it only holds the plausible positions forwarded to it), else the local
rule — the check-in point within ``VISIT_RADIUS_M`` of the customer's address coordinates with
an accuracy no worse than ``VISIT_MAX_ACCURACY_M`` → ``verified``; anything else →
``manual_pending`` for a supervisor, who approves (``manual_approved``) or rejects
(``rejected``) with a note; the review is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app, has_app_context
from flask_babel import gettext
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.cases import actions
from portal.events import publish
from portal.field import geo as field_geo
from portal.field import locations, plausibility
from portal.models import Action, ActionCode, Address, Case, Customer, User, Visit
from portal.models.enums import BUCKETS, bucket_for_dpd
from portal.permissions import scopes

OPEN_CASE_STATUSES = ("open", "in_progress", "promised", "skip_trace")
REVIEW_NOTE_MAX = 2000


class VisitError(Exception):
    """Field name → message (shown next to the fields; the API answers them as 422)."""

    def __init__(self, errors: dict[str, str], code: str = "invalid", status: int = 422):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.code = code
        self.status = status


def _t(message: str, **values) -> str:
    """``message`` in the reader's language (as written outside a request: workers, CLI)."""
    if has_app_context():
        return gettext(message, **values)
    return message % values if values else message


def _config(name: str, default):
    return current_app.config.get(name, default) if has_app_context() else default


def radius_m() -> float:
    return float(_config("VISIT_RADIUS_M", 200.0))


def max_accuracy_m() -> float:
    return float(_config("VISIT_MAX_ACCURACY_M", 100.0))


# --- addresses -------------------------------------------------------------------------------


def visit_address(session: Session, cif: str) -> Address | None:
    """The address a visit goes to: the customer's primary address with coordinates, else a home
    address with coordinates, else any address with coordinates."""
    return session.scalars(
        select(Address).where(Address.cif == cif, Address.lat.is_not(None),
                              Address.lon.is_not(None), Address.do_not_contact.is_(False))
        .order_by(Address.is_primary.desc(), (Address.type == "HOME").desc(), Address.id)
        .limit(1)).first()


def customer_location(session: Session, cif: str) -> dict | None:
    """Where a visit to ``cif`` goes (``visit_address``), with the customer's name and the
    bucket of their case, for a map; None without a located address."""
    address = visit_address(session, cif)
    if address is None:
        return None
    customer = session.scalar(select(Customer).where(Customer.cif == cif))
    max_dpd = session.scalar(select(func.max(Case.max_dpd)).where(Case.cif == cif))
    line = ", ".join(part for part in (address.line1, address.ward, address.district,
                                       address.city or address.province) if part)
    return {"name": customer.name if customer else cif, "address": line,
            "lat": float(address.lat), "lon": float(address.lon),
            "bucket": bucket_for_dpd(max_dpd or 0), "type": address.type,
            "is_primary": address.is_primary}


# --- planning --------------------------------------------------------------------------------


def plan_visit(session: Session, *, cif: str, agent_id: int | None, planned_for: date | None,
               planned_by: User, notes: str | None = None,
               today: date | None = None) -> Visit:
    """Plan a visit; a field agent plans only their own, a supervisor for the field agents of
    their teams, and only to customers whose case both may work (else ``VisitError`` 404,
    as if the customer or agent did not exist). No commit."""
    today = today or clock.bank_today()
    errors: dict[str, str] = {}
    customer = session.scalar(select(Customer).where(Customer.cif == cif)) if cif else None
    if customer is None:
        errors["cif"] = _t("Choose a customer.")
    if planned_by.role == "field_agent":
        agent_id = planned_by.id
    agent = session.get(User, agent_id) if agent_id else None
    if agent is None or agent.role != "field_agent" or not agent.active:
        errors["agent_id"] = _t("Choose an active field agent.")
    elif not scopes.may_access_agent(session, planned_by, agent.id):
        raise VisitError({"agent_id": _t("No such field agent in your teams.")}, "not_found", 404)
    if customer is not None and not all(
            scopes.may_access_case(session, user, customer.cif)
            for user in (planned_by, agent) if user is not None):
        raise VisitError({"cif": _t("No such customer among your teams' cases.")}, "not_found", 404)
    if planned_for is None:
        errors["planned_for"] = _t("Choose the day of the visit.")
    elif planned_for < today:
        errors["planned_for"] = _t("The visit cannot be planned in the past.")
    if notes and len(notes) > 2000:
        errors["notes"] = _t("Notes are limited to 2000 characters.")
    if not errors:
        twice = session.scalar(select(Visit.id).where(
            Visit.cif == customer.cif, Visit.agent_id == agent.id,
            Visit.planned_for == planned_for, Visit.status.in_(("planned", "checked_in"))))
        if twice:
            errors["cif"] = _t("This customer already has a visit planned that day for this agent.")
    if errors:
        raise VisitError(errors)
    address = visit_address(session, customer.cif)
    visit = Visit(cif=customer.cif, agent_id=agent.id, planned_for=planned_for,
                  planned_by_id=planned_by.id, status="planned",
                  address_id=address.id if address else None,
                  notes=(notes or "").strip() or None)
    session.add(visit)
    session.flush()
    return visit


# --- check-in and verification ---------------------------------------------------------------


@dataclass
class Decision:
    verification: str  # verified | manual_pending
    source: str  # gps | local
    reason: str
    distance_m: float | None


def local_rule(distance: float | None, accuracy: float | None, *, radius: float | None = None,
               max_accuracy: float | None = None) -> Decision:
    radius = radius_m() if radius is None else radius
    max_accuracy = max_accuracy_m() if max_accuracy is None else max_accuracy
    if distance is None:
        return Decision("manual_pending", "local", "the customer's address has no coordinates",
                        None)
    if accuracy is None or accuracy > max_accuracy:
        shown = "unknown" if accuracy is None else f"{accuracy:.0f} m"
        return Decision("manual_pending", "local",
                        f"position accuracy {shown} is worse than {max_accuracy:.0f} m", distance)
    if distance > radius:
        return Decision("manual_pending", "local",
                        f"{distance:.0f} m from the address (more than {radius:.0f} m)", distance)
    return Decision("verified", "local",
                    f"{distance:.0f} m from the address (within {radius:.0f} m)", distance)


def _float(value, name: str, errors: dict, low: float, high: float) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        errors[name] = f"{name} must be a number."
        return None
    if not low <= number <= high or number != number:
        errors[name] = f"{name} must be between {low:g} and {high:g}."
        return None
    return number


def checkin(session: Session, visit: Visit, *, agent_id: int, lat, lon, accuracy_m,
            at: datetime | None = None,
            remote: Callable[..., dict | None] | None = None) -> tuple[Visit, Decision]:
    """Check in at ``visit``; decides the verification; publishes VISIT_CHECKED_IN (and
    VISIT_VERIFIED when verified). No commit. ``remote`` asks the GPS system (None: local)."""
    now = clock.now()
    at = at or now
    if visit.agent_id != agent_id:
        raise VisitError({"visit": _t("This visit is planned for another agent.")},
                         "not_your_visit", 403)
    if visit.status != "planned":
        raise VisitError({"visit": f"This visit is already {visit.status.replace('_', ' ')}."},
                         "visit_not_planned", 409)
    if visit.planned_for != clock.bank_today(at):
        raise VisitError({"visit": f"This visit is planned for {visit.planned_for.isoformat()}, "
                                   "not today."}, "visit_not_today", 409)
    errors: dict[str, str] = {}
    lat = _float(lat, "lat", errors, -90, 90)
    lon = _float(lon, "lon", errors, -180, 180)
    accuracy = _float(accuracy_m, "accuracy_m", errors, 0, 100_000)
    if errors:
        raise VisitError(errors)

    address = session.get(Address, visit.address_id) if visit.address_id else None
    if address is None or address.lat is None:
        address = visit_address(session, visit.cif)
        visit.address_id = address.id if address else None
    distance = None
    if address is not None and address.lat is not None:
        distance = field_geo.distance_m(lat, lon, float(address.lat), float(address.lon))

    # the check-in is a position too: judged with the agent's others, then stored (below)
    point = locations.Point(lat, lon, at, accuracy)
    plausibility.judge(session, agent_id, [point], duplicates=True)
    decision = None
    if point.implausible:
        decision = Decision("manual_pending", "local",
                            f"implausible position: {point.implausible_note}", distance)
    elif remote is not None and distance is not None:
        agent = session.get(User, agent_id)
        answer = remote(agent=agent.username, lat=lat, lon=lon, accuracy_m=accuracy,
                        target_lat=float(address.lat), target_lon=float(address.lon),
                        radius_m=radius_m(), at=at.isoformat())
        if answer is not None:
            decision = Decision("verified" if answer["verified"] else "manual_pending", "gps",
                                str(answer.get("reason") or ("verified by the GPS system"
                                                             if answer["verified"] else
                                                             "not verified by the GPS system")),
                                distance)
    if decision is None:
        decision = local_rule(distance, accuracy)

    visit.status = "checked_in"
    visit.checked_in_at = at
    visit.checkin_lat, visit.checkin_lon, visit.checkin_accuracy_m = lat, lon, accuracy
    visit.distance_m = None if distance is None else round(distance, 1)
    visit.verification = decision.verification
    visit.verification_source = decision.source
    session.flush()
    # (a duplicate recorded_at is ignored)
    locations.store_points(session, agent_id, [point], source="checkin", now=now)
    publish("VISIT_CHECKED_IN", {
        "visit_id": visit.id, "cif": visit.cif, "agent_id": agent_id,
        "checked_in_at": at.isoformat(), "lat": lat, "lon": lon,
        "distance_m": None if distance is None else round(distance, 1),
        "verification": decision.verification,
    }, session=session)
    if decision.verification == "verified":
        publish("VISIT_VERIFIED", {"visit_id": visit.id, "cif": visit.cif,
                                   "verification": "verified", "agent_id": agent_id,
                                   "note": decision.reason}, session=session)
    return visit, decision


def review(session: Session, visit: Visit, *, reviewer: User, approve: bool,
           note: str | None) -> Visit:
    """A supervisor's decision on a visit that could not be verified; audited. No commit."""
    note = (note or "").strip()
    if visit.verification != "manual_pending":
        raise VisitError({"visit": _t("This visit is not waiting for a review.")},
                         "not_pending", 409)
    if not approve and not note:
        raise VisitError({"note": _t("Say why the visit is rejected.")})
    if len(note) > REVIEW_NOTE_MAX:
        raise VisitError({"note": _t("The note is limited to %(num)s characters.",
                                     num=REVIEW_NOTE_MAX)})
    before = {"verification": visit.verification, "reviewer_id": visit.reviewer_id,
              "review_note": visit.review_note}
    visit.verification = "manual_approved" if approve else "rejected"
    visit.reviewer_id = reviewer.id
    visit.reviewed_at = clock.now()
    visit.review_note = note or None
    audit.record(session, reviewer, "visit.approve" if approve else "visit.reject", "visit",
                 visit.id, before, {"verification": visit.verification,
                                    "reviewer_id": reviewer.id, "review_note": visit.review_note,
                                    "distance_m": None if visit.distance_m is None
                                    else float(visit.distance_m)})
    publish("VISIT_VERIFIED", {"visit_id": visit.id, "cif": visit.cif,
                               "verification": visit.verification, "reviewer_id": reviewer.id,
                               "agent_id": visit.agent_id, "note": note or None},
            session=session)
    session.flush()
    return visit


def record_outcome(session: Session, visit: Visit, *, agent: User,
                   data: actions.ActionInput) -> Action:
    """The visit's outcome as a VISIT action (with promise capture, contact rules and case
    update by the actions service); the visit becomes ``completed``. No commit."""
    if visit.agent_id != agent.id:
        raise VisitError({"visit": _t("This visit is planned for another agent.")},
                         "not_your_visit", 403)
    if visit.status != "checked_in":
        raise VisitError({"visit": "Check in at the customer's address before recording the "
                                   "outcome."}, "not_checked_in", 409)

    code = session.get(ActionCode, data.action_code_id) if data.action_code_id else None
    if code is not None and code.type != "VISIT":
        raise actions.ActionValidationError({"action_code_id": _t("Choose a visit result.")})
    action = actions.record_action(session, agent=agent, cif=visit.cif, data=data)
    action.visit_id = visit.id
    action.lat, action.lon = visit.checkin_lat, visit.checkin_lon
    visit.status = "completed"
    session.flush()
    return action


def mark_missed(session: Session, today: date | None = None) -> int:
    today = today or clock.bank_today()
    result = session.execute(text("""
        UPDATE visits SET status = 'missed', updated_at = crm_now()
        WHERE status = 'planned' AND planned_for < :today"""), {"today": today})
    return result.rowcount or 0


# --- reading ---------------------------------------------------------------------------------


def visits_for_day(session: Session, day: date, *, agent_ids: list[int] | None = None,
                   team_id: int | None = None) -> list[dict]:
    """Visits of a day with the customer, the agent and the address coordinates."""
    where = ["v.planned_for = :day"]
    params: dict = {"day": day}
    if agent_ids is not None:
        where.append("v.agent_id = ANY(:agents)")
        params["agents"] = list(agent_ids)
    if team_id is not None:
        where.append("u.team_id = :team")
        params["team"] = team_id
    rows = session.execute(text(f"""
        SELECT v.id, v.cif, v.agent_id, u.full_name AS agent_name, v.status, v.verification,
               v.verification_source, v.checked_in_at, v.distance_m, v.checkin_accuracy_m,
               v.planned_for, v.notes, v.review_note,
               c.name AS customer_name, a.line1, a.district, a.city, a.lat, a.lon,
               cs.priority, cs.max_dpd, cs.total_overdue
        FROM visits v
        JOIN customers c ON c.cif = v.cif
        LEFT JOIN users u ON u.id = v.agent_id
        LEFT JOIN addresses a ON a.id = v.address_id
        LEFT JOIN cases cs ON cs.cif = v.cif
        WHERE {' AND '.join(where)}
        ORDER BY v.agent_id, v.id"""), params).mappings().all()
    return [dict(r) for r in rows]


def pending_reviews(session: Session, *, team_id: int | None = None,
                    agent_ids: list[int] | None = None) -> list[dict]:
    """Visits waiting for a supervisor's review (of a team / of ``agent_ids``)."""
    where = "v.verification = 'manual_pending'"
    params: dict = {}
    if team_id is not None:
        where += " AND u.team_id = :team"
        params["team"] = team_id
    if agent_ids is not None:
        where += " AND v.agent_id = ANY(:agents)"
        params["agents"] = list(agent_ids)
    rows = session.execute(text(f"""
        SELECT v.id, v.cif, v.agent_id, u.full_name AS agent_name, v.checked_in_at,
               v.distance_m, v.checkin_accuracy_m, v.verification_source, v.planned_for,
               v.checkin_lat, v.checkin_lon, c.name AS customer_name, a.line1, a.district,
               a.lat, a.lon, l.implausible_reason
        FROM visits v JOIN customers c ON c.cif = v.cif
        LEFT JOIN users u ON u.id = v.agent_id
        LEFT JOIN addresses a ON a.id = v.address_id
        LEFT JOIN agent_locations l ON l.agent_id = v.agent_id
                                   AND l.recorded_at = v.checked_in_at
        WHERE {where} ORDER BY v.checked_in_at NULLS LAST, v.id"""), params).mappings().all()
    return [dict(r) for r in rows]


def _case_points_sql(where: str) -> str:
    # one address per customer: primary first, then home, then any — with coordinates
    return f"""
        SELECT DISTINCT ON (cs.cif) cs.cif, c.name, cs.priority, cs.max_dpd, cs.total_overdue,
               cs.assigned_field_agent_id, a.line1, a.district, a.lat, a.lon
        FROM cases cs
        JOIN customers c ON c.cif = cs.cif
        JOIN addresses a ON a.cif = cs.cif AND a.lat IS NOT NULL AND a.lon IS NOT NULL
                        AND NOT a.do_not_contact
        WHERE cs.status = ANY(:open) AND {where}
        ORDER BY cs.cif, a.is_primary DESC, (a.type = 'HOME') DESC, a.id"""


def _bucket_case_sql(column: str, *, rank: bool = False) -> str:
    """``bucket_for_dpd`` as a SQL CASE (the same BUCKETS table, one definition): the bucket's
    name, or with ``rank`` its place in BUCKETS from 1 (the larger, the worse)."""

    whens = []
    for place, (name, low, high) in enumerate(BUCKETS, start=1):
        cond = f"{column} >= {int(low)}" + (f" AND {column} <= {int(high)}"
                                             if high is not None else "")
        whens.append(f"WHEN {cond} THEN " + (str(place) if rank else f"'{name}'"))
    return f"CASE {' '.join(whens)} ELSE " + ("1" if rank else f"'{BUCKETS[0][0]}'") + " END"


def _field_agents_where(params: dict, *, team_id: int | None, agent_id: int | None,
                        agent_ids: list[int] | None) -> str:
    """Whose open cases a map shows: one agent, ``agent_ids``, a team's field agents, or all."""
    if agent_id is not None:
        params["agent"] = agent_id
        return "cs.assigned_field_agent_id = :agent"
    if agent_ids is not None:
        params["agents"] = list(agent_ids)
        return "cs.assigned_field_agent_id = ANY(:agents)"
    if team_id is not None:
        params["team"] = team_id
        return ("cs.assigned_field_agent_id IN (SELECT id FROM users WHERE team_id = :team "
                "AND role = 'field_agent')")
    return "cs.assigned_field_agent_id IS NOT NULL"


def team_customers_json(session: Session, *, team_id: int | None = None,
                        agent_id: int | None = None,
                        agent_ids: list[int] | None = None) -> str:
    """Customers with open cases held by field agents (of a team / one agent / ``agent_ids``),
    at their visit address, as compact JSON rows built by PostgreSQL (the map's JSON API; the
    map itself draws ``customer_clusters``):
    ``[[cif, name, lat, lon, bucket, dpd, priority, agent_id], ...]``."""
    params: dict = {"open": list(OPEN_CASE_STATUSES)}
    where = _field_agents_where(params, team_id=team_id, agent_id=agent_id, agent_ids=agent_ids)
    return session.scalar(text(f"""
        SELECT coalesce(json_agg(json_build_array(
                   p.cif, p.name, round(p.lat, 5), round(p.lon, 5),
                   {_bucket_case_sql("coalesce(p.max_dpd, 0)")}, p.max_dpd, p.priority,
                   p.assigned_field_agent_id)), '[]')::text
        FROM ({_case_points_sql(where)}) p"""), params)


# The field map clusters customers on a grid of screen cells (Web Mercator pixels at the map's
# zoom, anchored to the world so a cluster stays put while the map pans): PostgreSQL sends the
# cells in view, not every customer, so the browser draws hundreds of markers, not thousands.
CLUSTER_CELL_PX = 60
# from this zoom on (a street), customers are grouped only when they share a position (one
# building), and such a group carries its rows for a list
CLUSTER_STREET_ZOOM = 17
CLUSTER_GROUP_ROWS = 50


def customer_clusters(session: Session, *, zoom: int,
                      bbox: tuple[float, float, float, float] | None = None,
                      team_id: int | None = None, agent_ids: list[int] | None = None) -> str:
    """The customers of the field map (as ``team_customers_json`` chooses them) in the box
    ``(west, south, east, north)``, clustered for ``zoom``; JSON written by PostgreSQL::

        {"total": all customers of the filters, "in_view": customers in the box,
         "clusters": [[lat, lon, count, worst bucket rank, s, w, n, e, rows or null], ...],
         "customers": [[cif, name, lat, lon, bucket, dpd, priority, agent_id], ...]}

    A cell holding one customer comes as that customer's row; ``rows`` (the same shape, by
    priority, at most ``CLUSTER_GROUP_ROWS``) only from ``CLUSTER_STREET_ZOOM`` on."""
    params: dict = {"open": list(OPEN_CASE_STATUSES)}
    where = _field_agents_where(params, team_id=team_id, agent_id=None, agent_ids=agent_ids)
    street = zoom >= CLUSTER_STREET_ZOOM
    # cells in world pixels: 256 · 2^zoom across; one pixel apart at street level
    params.update(cells_across=(256.0 * 2 ** zoom) / (1 if street else CLUSTER_CELL_PX),
                  with_rows=street, group_rows=CLUSTER_GROUP_ROWS)
    in_box = "TRUE"
    if bbox is not None:
        params.update(west=bbox[0], south=bbox[1], east=bbox[2], north=bbox[3])
        in_box = "p.lat BETWEEN :south AND :north AND p.lon BETWEEN :west AND :east"
    row = """json_build_array(g.cif, g.name, round(g.lat::numeric, 5), round(g.lon::numeric, 5),
                              g.bucket, g.max_dpd, g.priority, g.assigned_field_agent_id)"""
    return session.scalar(text(f"""
        WITH p AS ({_case_points_sql(where)}),
        placed AS (
            SELECT p.cif, p.name, p.priority, p.max_dpd, p.assigned_field_agent_id,
                   m.lat, m.lon, {_bucket_case_sql("coalesce(p.max_dpd, 0)")} AS bucket,
                   {_bucket_case_sql("coalesce(p.max_dpd, 0)", rank=True)} AS bucket_rank,
                   floor((m.lon + 180) / 360 * :cells_across) AS gx,
                   floor((1 - ln(tan(radians(m.y_lat)) + 1 / cos(radians(m.y_lat))) / pi()) / 2
                         * :cells_across) AS gy
            FROM p CROSS JOIN LATERAL (
                SELECT p.lat::float8 AS lat, p.lon::float8 AS lon,
                       greatest(-85, least(85, p.lat::float8)) AS y_lat) m
            WHERE {in_box}),
        g AS (SELECT placed.*, count(*) OVER (PARTITION BY gx, gy) AS in_cell FROM placed),
        cells AS (
            SELECT json_build_array(
                       round(avg(g.lat)::numeric, 5), round(avg(g.lon)::numeric, 5), count(*),
                       max(g.bucket_rank), round(min(g.lat)::numeric, 5),
                       round(min(g.lon)::numeric, 5), round(max(g.lat)::numeric, 5),
                       round(max(g.lon)::numeric, 5),
                       (array_agg({row} ORDER BY g.priority DESC NULLS LAST, g.cif)
                            FILTER (WHERE :with_rows))[1:(:group_rows)]
                   ) AS cell
            FROM g WHERE g.in_cell > 1 GROUP BY g.gx, g.gy)
        SELECT json_build_object(
            'total', (SELECT count(*) FROM p),
            'in_view', (SELECT count(*) FROM g),
            'clusters', coalesce((SELECT json_agg(cell) FROM cells), '[]'),
            'customers', coalesce((SELECT json_agg({row}) FROM g WHERE g.in_cell = 1), '[]')
        )::text"""), params)


def customer_extent(session: Session, *, team_id: int | None = None,
                    agent_ids: list[int] | None = None) -> list | None:
    """``[[south, west], [north, east]]`` of the customers ``customer_clusters`` would show, or
    None: where the field map opens when no agent or visit is placed."""
    params: dict = {"open": list(OPEN_CASE_STATUSES)}
    where = _field_agents_where(params, team_id=team_id, agent_id=None, agent_ids=agent_ids)
    row = session.execute(text(f"""
        SELECT min(p.lat), min(p.lon), max(p.lat), max(p.lon)
        FROM ({_case_points_sql(where)}) p"""), params).one()
    if row[0] is None:
        return None
    return [[float(row[0]), float(row[1])], [float(row[2]), float(row[3])]]


def suggestions(session: Session, agent: User, *, lat: float | None = None,
                lon: float | None = None, radius_km: float | None = None, limit: int = 20,
                today: date | None = None) -> dict:
    """Customers near the agent's latest position (or the given point) within ``radius_km``:
    the agent's own cases and their team's field cases, by priority then distance; customers
    already planned today are marked."""
    radius_km = float(radius_km if radius_km is not None else _config("FIELD_NEARBY_KM", 3.0))
    today = today or clock.bank_today()
    origin = None
    if lat is not None and lon is not None:
        origin = {"lat": lat, "lon": lon, "recorded_at": None, "source": "given"}
    else:
        latest = locations.latest_position(session, agent.id)
        if latest is not None:
            origin = {"lat": float(latest["lat"]), "lon": float(latest["lon"]),
                      "recorded_at": latest["recorded_at"].isoformat(), "source": "latest"}
    if origin is None:
        return {"origin": None, "radius_km": radius_km, "customers": []}
    min_lat, max_lat, min_lon, max_lon = field_geo.bounding_box(origin["lat"], origin["lon"],
                                                                radius_km * 1000)
    params = {"open": list(OPEN_CASE_STATUSES), "agent": agent.id, "team": agent.team_id,
              "a0": min_lat, "a1": max_lat, "o0": min_lon, "o1": max_lon}
    where = ("(cs.assigned_field_agent_id = :agent OR cs.assigned_field_agent_id IN "
             "(SELECT id FROM users WHERE team_id = :team AND role = 'field_agent')) "
             "AND a.lat BETWEEN :a0 AND :a1 AND a.lon BETWEEN :o0 AND :o1")
    rows = session.execute(text(_case_points_sql(where)), params).all()
    planned = set(session.scalars(select(Visit.cif).where(
        Visit.planned_for == today, Visit.status.in_(("planned", "checked_in")))))
    found = []
    for r in rows:
        d = field_geo.distance_m(origin["lat"], origin["lon"], float(r.lat), float(r.lon))
        if d > radius_km * 1000:
            continue
        found.append({"cif": r.cif, "name": r.name, "priority": r.priority, "dpd": r.max_dpd,
                      "bucket": bucket_for_dpd(r.max_dpd or 0),
                      "overdue": float(r.total_overdue or 0), "address": r.line1,
                      "district": r.district, "lat": float(r.lat), "lon": float(r.lon),
                      "distance_m": round(d, 1), "mine": r.assigned_field_agent_id == agent.id,
                      "planned_today": r.cif in planned})
    found.sort(key=lambda s: (-(s["priority"] or 0), s["distance_m"]))
    return {"origin": origin, "radius_km": radius_km, "customers": found[:limit]}


def plan_my_day(session: Session, agent: User, day: date | None = None) -> dict:
    """The agent's open visits of the day in a short visiting order from their latest position
    (nearest neighbour + 2-opt), with the total distance."""
    day = day or clock.bank_today()
    rows = [v for v in visits_for_day(session, day, agent_ids=[agent.id])
            if v["status"] == "planned" and v["lat"] is not None]
    latest = locations.latest_position(session, agent.id)
    start = (float(latest["lat"]), float(latest["lon"])) if latest else None
    points = [(float(v["lat"]), float(v["lon"])) for v in rows]
    order = field_geo.order_route(start, points)
    path = ([start] if start else []) + [points[i] for i in order]
    return {"start": start, "visit_ids": [rows[i]["id"] for i in order],
            "distance_m": round(field_geo.path_length_m(path), 1)}


def count_pending_reviews(session: Session, agent_ids: list[int] | None = None) -> int:
    query = select(func.count()).select_from(Visit).where(Visit.verification == "manual_pending")
    if agent_ids is not None:
        query = query.where(Visit.agent_id.in_(agent_ids))
    return session.scalar(query) or 0
