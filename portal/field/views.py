"""Field pages. Thin: parse the request, call a service, render (or answer JSON for the map)."""

from __future__ import annotations

import json
from datetime import date, timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from portal import clock
from portal.cases import actions
from portal.cases.forms import ActionForm
from portal.extensions import db, partial_request
from portal.field import locations, visits
from portal.models import ActionCode, Team, User, Visit
from portal.models.enums import BUCKET_NAMES
from portal.permissions import scopes
from portal.permissions.decorators import permission_required
from portal.permissions.roles import can
from portal.web import format_ago

bp = Blueprint("field", __name__, url_prefix="/field")

BUCKET_COLOURS = {"current": "#2e8b57", "1-30": "#2b6fca", "31-60": "#d4a017",
                  "61-90": "#e07020", "90+": "#c0392b"}


# --- filters ---------------------------------------------------------------------------------


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None


def _filters() -> dict:
    """Team and agent of the map, within the teams the user supervises (403 outside them): a
    supervisor starts on their own team; "all" means all of theirs."""
    team_raw = request.args.get("team")
    if team_raw is None:
        team_id = current_user.team_id
    else:
        team_id = int(team_raw) if team_raw.isdigit() else None
    scope = scopes.team_scope(db.session, current_user)
    if team_id is not None and scope is not None and team_id not in scope:
        abort(403, description="That team is not one of yours.")
    agent_id = _int_arg("agent")
    if agent_id is not None and not scopes.may_access_agent(db.session, current_user,
                                                                 agent_id):
        abort(403, description="That agent is not in one of your teams.")
    return {"team_id": team_id, "agent_id": agent_id, "scope": scope}


def _field_agents(team_id: int | None, scope: list[int | None] | None = None) -> list[User]:
    """Active field agents of ``team_id``, or of every team in ``scope`` (None: all teams)."""
    query = select(User).where(User.role == "field_agent", User.active.is_(True))
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    elif scope is not None:
        query = query.where(scopes.members_of(scope))
    return list(db.session.scalars(query.order_by(User.full_name)))


def _agents_shown(filters: dict) -> list[int] | None:
    """The agent ids the map and the reviews are limited to (None: no limit, an admin)."""
    if filters["agent_id"]:
        return [filters["agent_id"]]
    if filters["team_id"] is None and filters["scope"] is not None:
        return [a.id for a in _field_agents(None, filters["scope"])]
    return None


def _reviewable_agent_ids() -> list[int] | None:
    """Agents whose visits the current supervisor reviews (None: every agent, an admin)."""
    scope = scopes.team_scope(db.session, current_user)
    if scope is None:
        return None
    return list(db.session.scalars(select(User.id).where(scopes.members_of(scope))))


# --- supervisor map --------------------------------------------------------------------------


@bp.get("/map", endpoint="map")
@permission_required("field.track")
def map_page():
    filters = _filters()
    teams_query = select(Team).order_by(Team.name)
    if filters["scope"] is not None:
        teams_query = teams_query.where(Team.id.in_([t for t in filters["scope"] if t]))
    teams = list(db.session.scalars(teams_query))
    agents = _field_agents(filters["team_id"], filters["scope"])
    today = clock.bank_today()
    config = current_app.config
    map_config = {
        "data_url": url_for("field.map_data"),
        "route_url": url_for("field.agent_route", agent_id=0).replace("/0/", "/{id}/"),
        "tile_url": config.get("MAP_TILE_URL", ""),
        "tile_attribution": config.get("MAP_TILE_ATTRIBUTION", ""),
        "refresh_seconds": config.get("FIELD_MAP_REFRESH_SECONDS", 10),
        "stale_minutes": config.get("FIELD_STALE_MINUTES", 15),
        "bucket_colours": BUCKET_COLOURS,
    }
    return render_template(
        "field/map.html", teams=teams, agents=agents, filters=filters, today=today,
        map_config=map_config, buckets=BUCKET_NAMES, bucket_colours=BUCKET_COLOURS,
        pending_reviews=visits.count_pending_reviews(db.session, _reviewable_agent_ids())
        if can("field.review") else 0)


def _agent_json(row: dict, now, stale_minutes: int) -> dict:
    seen = row["recorded_at"]
    return {
        "id": row["id"], "name": row["full_name"], "username": row["username"],
        "team": row["team_name"],
        "lat": None if row["lat"] is None else float(row["lat"]),
        "lon": None if row["lon"] is None else float(row["lon"]),
        "accuracy_m": None if row["accuracy_m"] is None else float(row["accuracy_m"]),
        "battery": None if row["battery"] is None else float(row["battery"]),
        "recorded_at": seen.isoformat() if seen else None,
        "last_seen": format_ago(seen) if seen else "never",
        "stale": seen is None or now - seen > timedelta(minutes=stale_minutes),
    }


@bp.get("/map/data")
@permission_required("field.track")
def map_data():
    """Latest agent positions, today's visits and (``customers=1``) the team's customers."""
    filters = _filters()
    now = clock.now()
    stale = int(current_app.config.get("FIELD_STALE_MINUTES", 15))
    agent_ids = _agents_shown(filters)
    agents = locations.latest_positions(db.session, team_id=filters["team_id"],
                                        agent_ids=agent_ids)
    day = clock.bank_today()
    day_visits = visits.visits_for_day(db.session, day, team_id=filters["team_id"],
                                       agent_ids=agent_ids)
    body = {
        "generated_at": now.isoformat(),
        "agents": [_agent_json(a, now, stale) for a in agents],
        "visits": [{
            "id": v["id"], "cif": v["cif"], "customer": v["customer_name"],
            "agent_id": v["agent_id"], "agent": v["agent_name"], "status": v["status"],
            "verification": v["verification"], "address": v["line1"],
            "lat": None if v["lat"] is None else float(v["lat"]),
            "lon": None if v["lon"] is None else float(v["lon"]),
            "distance_m": None if v["distance_m"] is None else float(v["distance_m"]),
        } for v in day_visits],
    }
    if request.args.get("customers") != "1":
        return jsonify(body)
    # compact rows [cif, name, lat, lon, bucket, dpd, priority, agent_id], as PostgreSQL wrote
    # them: spliced into the answer rather than decoded and encoded again
    customers = visits.team_customers_json(db.session, team_id=filters["team_id"],
                                           agent_ids=agent_ids)
    head = json.dumps(body, separators=(",", ":"))
    return current_app.response_class(f'{head[:-1]},"customers":{customers}}}',
                                      mimetype="application/json")


@bp.get("/map/agents/<int:agent_id>/route")
@permission_required("field.track")
def agent_route(agent_id: int):
    """An agent's route of a day (``?date=``, default today): simplified line, distance, stops."""
    raw = request.args.get("date")
    try:
        day = date.fromisoformat(raw) if raw else clock.bank_today()
    except ValueError:
        return jsonify({"error": {"code": "invalid_date", "message": "YYYY-MM-DD"}}), 400
    agent = db.session.get(User, agent_id)
    if agent is None or agent.role != "field_agent":
        abort(404)
    route = locations.route_history(db.session, agent_id, day)
    route["agent"] = agent.full_name
    return jsonify(route)


# --- reviews ---------------------------------------------------------------------------------


@bp.get("/reviews")
@permission_required("field.review")
def reviews():
    rows = visits.pending_reviews(db.session, agent_ids=_reviewable_agent_ids())
    return render_template("field/reviews.html", rows=rows,
                           radius_m=visits.radius_m(), max_accuracy_m=visits.max_accuracy_m())


@bp.post("/reviews/<int:visit_id>")
@permission_required("field.review")
def review_visit(visit_id: int):
    visit = db.session.scalar(select(Visit).where(Visit.id == visit_id).with_for_update())
    if visit is None:
        abort(404)
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        abort(400, description="Choose approve or reject.")
    try:
        visits.review(db.session, visit, reviewer=current_user, approve=decision == "approve",
                      note=request.form.get("note"))
    except visits.VisitError as exc:
        db.session.rollback()
        row = next((r for r in visits.pending_reviews(db.session, agent_ids=[visit.agent_id])
                    if r["id"] == visit_id), None)
        if row is None:
            abort(409, description=str(exc))
        return render_template("field/_review_row.html", r=row, errors=exc.errors,
                               note=request.form.get("note", "")), 422
    db.session.commit()
    if partial_request():
        return render_template("field/_review_row.html", r=None, done=visit,
                               decision=decision)
    flash(f"Visit {visit_id} {'approved' if decision == 'approve' else 'rejected'}.", "success")
    return redirect(url_for("field.reviews"))


# --- planning (supervisor) -------------------------------------------------------------------


@bp.post("/plan")
@permission_required("supervisor.assign")
def plan():
    try:
        day = date.fromisoformat(request.form.get("planned_for", ""))
    except ValueError:
        day = None
    agent_id = request.form.get("agent_id", "")
    try:
        visit = visits.plan_visit(db.session, cif=request.form.get("cif", "").strip(),
                                  agent_id=int(agent_id) if agent_id.isdigit() else None,
                                  planned_for=day, planned_by=current_user,
                                  notes=request.form.get("notes"))
    except visits.VisitError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash("Visit not planned: " + " ".join(exc.errors.values()), "error")
        return redirect(request.referrer or url_for("field.map"))
    db.session.commit()
    flash(f"Visit to {visit.cif} planned for {visit.planned_for:%d/%m/%Y}.", "success")
    return redirect(request.referrer or url_for("field.map"))


# --- the field agent's day -------------------------------------------------------------------


def _visit_codes() -> list[ActionCode]:
    return list(db.session.scalars(select(ActionCode).where(
        ActionCode.active.is_(True), ActionCode.type == "VISIT")
        .order_by(ActionCode.sort_order, ActionCode.id)))


def _my_day_context(**extra) -> dict:
    today = clock.bank_today()
    rows = visits.visits_for_day(db.session, today, agent_ids=[current_user.id])
    route = visits.plan_my_day(db.session, current_user, today)
    order = {vid: n for n, vid in enumerate(route["visit_ids"], 1)}
    found = visits.suggestions(db.session, current_user)
    latest = locations.latest_position(db.session, current_user.id)
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
    config = current_app.config
    map_config = {"tile_url": config.get("MAP_TILE_URL", ""),
                  "tile_attribution": config.get("MAP_TILE_ATTRIBUTION", ""),
                  "bucket_colours": BUCKET_COLOURS}
    return {"today": today, "rows": rows, "route": route, "order": order,
            "suggestions": found, "latest": latest, "codes": _visit_codes(),
            "map_points": map_points, "map_config": map_config, **extra}


@bp.get("/visits", endpoint="visits")
@permission_required("field.visits")
def visits_page():
    return render_template("field/my_day.html", **_my_day_context())


@bp.post("/visits/plan")
@permission_required("field.visits")
def plan_own():
    try:
        visit = visits.plan_visit(db.session, cif=request.form.get("cif", "").strip(),
                                  agent_id=current_user.id, planned_for=clock.bank_today(),
                                  planned_by=current_user, notes=request.form.get("notes"))
    except visits.VisitError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash("Visit not planned: " + " ".join(exc.errors.values()), "error")
        return redirect(url_for("field.visits"))
    db.session.commit()
    flash(f"Visit to {visit.cif} added to today's plan.", "success")
    return redirect(url_for("field.visits"))


@bp.post("/visits/<int:visit_id>/outcome")
@permission_required("field.visits")
def outcome(visit_id: int):
    visit = db.session.scalar(select(Visit).where(Visit.id == visit_id).with_for_update())
    if visit is None:
        abort(404)
    form = request.form
    data, errors = ActionForm().action_input()
    refusal = None
    if not errors:
        try:
            visits.record_outcome(db.session, visit, agent=current_user, data=data)
        except actions.ActionValidationError as exc:
            errors = exc.errors
        except actions.ContactRefused as exc:
            refusal = exc.reason
        except visits.VisitError as exc:
            errors = exc.errors
    if errors or refusal:
        db.session.rollback()
        return render_template("field/my_day.html", **_my_day_context(
            form_errors=errors, form_visit_id=visit_id, form_values=form,
            refusal=refusal)), 422
    db.session.commit()
    flash("Visit outcome saved to the customer's timeline.", "success")
    return redirect(url_for("field.visits"))
