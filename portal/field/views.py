"""Field pages. Thin: parse the request, call a service, render (or answer JSON for the map)."""

from __future__ import annotations

import json
from datetime import date

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
from flask_babel import gettext as _
from flask_login import current_user

from portal import clock
from portal.cases import actions
from portal.extensions import db, partial_request
from portal.field import locations, maps, queries, rejections, visits
from portal.field.forms import PlanVisitForm, ReviewForm, VisitOutcomeForm
from portal.i18n import format_ago, format_date, format_datetime
from portal.models.enums import BUCKET_NAMES
from portal.permissions import scopes
from portal.permissions.decorators import api_error, permission_required
from portal.permissions.roles import can

bp = Blueprint("field", __name__, url_prefix="/field")

BUCKET_COLOURS = maps.BUCKET_COLOURS


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
        abort(403, description=_("That team is not one of yours."))
    agent_id = _int_arg("agent")
    if agent_id is not None and not scopes.may_access_agent(db.session, current_user,
                                                                 agent_id):
        abort(403, description=_("That agent is not in one of your teams."))
    return {"team_id": team_id, "agent_id": agent_id, "scope": scope}


def _agents_shown(filters: dict) -> list[int] | None:
    """The agent ids the map and the reviews are limited to (None: no limit, an admin)."""
    if filters["agent_id"]:
        return [filters["agent_id"]]
    if filters["team_id"] is None and filters["scope"] is not None:
        return [a.id for a in queries.field_agents(db.session, None, filters["scope"])]
    return None


# --- supervisor map --------------------------------------------------------------------------


def _map_config() -> dict:
    """What the live part of the field map (static/js/field_map.js) needs."""
    config = current_app.config
    return {
        "data_url": url_for("field.map_data"),
        "script_url": url_for("field.map_script"),
        "route_url": url_for("field.route_script", agent_id=0).replace("/0/", "/{id}/"),
        "refresh_seconds": config.get("FIELD_MAP_REFRESH_SECONDS", 10),
        "stale_minutes": locations.stale_minutes(),
    }


@bp.get("/map", endpoint="map")
@permission_required("field.track")
def map_page():
    filters = _filters()
    teams = queries.teams_in(db.session, filters["scope"])
    agents = queries.field_agents(db.session, filters["team_id"], filters["scope"])
    today = clock.bank_today()
    # the map itself comes from map_script (folium); the page names the assets folium lists
    skeleton = maps.supervisor_map(agents=[], visits=[], config={})
    return render_template(
        "field/map.html", teams=teams, agents=agents, filters=filters, today=today,
        map_config=_map_config(), map_assets=maps.assets(skeleton),
        map_script_url=url_for("field.map_script", **{k: v for k, v in request.args.items()
                                                      if k in ("team", "agent")}),
        map_customers_url=url_for("field.map_customers",
                                  **{k: v for k, v in request.args.items()
                                     if k in ("team", "agent")}),
        buckets=BUCKET_NAMES, bucket_colours=BUCKET_COLOURS,
        pending_reviews=visits.count_pending_reviews(
            db.session, queries.reviewable_agent_ids(db.session, current_user))
        if can("field.review") else 0)


def _agent_json(row: dict, now, implausible: int = 0) -> dict:
    seen = row["recorded_at"]
    return {
        "id": row["id"], "name": row["full_name"], "username": row["username"],
        "team": row["team_name"],
        "lat": None if row["lat"] is None else float(row["lat"]),
        "lon": None if row["lon"] is None else float(row["lon"]),
        "accuracy_m": None if row["accuracy_m"] is None else float(row["accuracy_m"]),
        "battery": None if row["battery"] is None else float(row["battery"]),
        "recorded_at": seen.isoformat() if seen else None,
        "last_seen": format_ago(seen),  # "never" in the page's language
        "stale": not locations.is_live(seen, now),  # the one definition of "live"
        "implausible_today": implausible,  # points of today left out as implausible
    }


def _map_body(filters: dict, now, agent_ids: list[int] | None) -> dict:
    """Latest agent positions and today's visits of the map's filters (``_agents_shown``)."""
    agents = locations.latest_positions(db.session, team_id=filters["team_id"],
                                        agent_ids=agent_ids)
    day = clock.bank_today()
    day_visits = visits.visits_for_day(db.session, day, team_id=filters["team_id"],
                                       agent_ids=agent_ids)
    implausible = locations.implausible_counts(db.session, day, [a["id"] for a in agents])
    return {
        "generated_at": now.isoformat(),
        "generated_time": format_datetime(now, "%H:%M"),
        "agents": [_agent_json(a, now, implausible.get(a["id"], 0)) for a in agents],
        "visits": [{
            "id": v["id"], "cif": v["cif"], "customer": v["customer_name"],
            "agent_id": v["agent_id"], "agent": v["agent_name"], "status": v["status"],
            "verification": v["verification"], "address": v["line1"],
            "lat": None if v["lat"] is None else float(v["lat"]),
            "lon": None if v["lon"] is None else float(v["lon"]),
            "distance_m": None if v["distance_m"] is None else float(v["distance_m"]),
        } for v in day_visits],
    }


def _map_size() -> tuple[int, int]:
    """The map's size in the browser (``size=WxH`` px), else a desktop's."""
    width, _x, height = request.args.get("size", "").partition("x")
    if width.isdigit() and height.isdigit() and 100 <= int(width) <= 8000 \
            and 100 <= int(height) <= 8000:
        return int(width), int(height)
    return maps.DEFAULT_MAP_SIZE


@bp.get("/map/view.js")
@permission_required("field.track")
def map_script():
    """The field map as folium draws it (a script: the page's CSP allows no inline one)."""
    filters = _filters()
    body = _map_body(filters, clock.now(), _agents_shown(filters))
    fmap = maps.supervisor_map(agents=body["agents"], visits=body["visits"],
                               config={**_map_config(), "generated_time": body["generated_time"]})
    return maps.javascript_response(maps.script(fmap))


@bp.get("/map/customers.json")
@permission_required("field.track")
def map_customers():
    """The customers of the map's filters, clustered by PostgreSQL
    (``visits.customer_clusters``, its JSON as it wrote it): of the view ``zoom`` +
    ``bbox=west,south,east,north``; or, with ``size=WxH`` alone, of the first view the map will
    fit on that size, which the answer names (``"view": {"zoom", "bounds"}``): field_map.js
    asks for it beside folium's script, before the map exists."""
    filters = _filters()
    agent_ids = _agents_shown(filters)
    if "zoom" not in request.args and "size" in request.args:
        return _first_view_customers(filters, agent_ids)
    try:
        zoom = int(request.args.get("zoom", maps.MIN_ZOOM))
        if not maps.MIN_ZOOM <= zoom <= maps.MAX_ZOOM:
            raise ValueError
    except ValueError:
        return api_error(400, "invalid_zoom", "'zoom' must be a whole number from "
                         f"{maps.MIN_ZOOM} to {maps.MAX_ZOOM}.")
    bbox = None
    if request.args.get("bbox"):
        try:
            bbox = tuple(float(v) for v in request.args["bbox"].split(","))
            west, south, east, north = bbox
            if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
                raise ValueError
        except ValueError:
            return api_error(400, "invalid_bbox", "'bbox' must be west,south,east,north in "
                             "degrees, west <= east and south <= north.")
    return _json_text(visits.customer_clusters(db.session, zoom=zoom, bbox=bbox,
                                                team_id=filters["team_id"], agent_ids=agent_ids))


def _first_view_customers(filters: dict, agent_ids: list[int] | None):
    """The first view fitted on the browser's map size, as field_map.js will fit it: its agents
    and today's visits, else its customers; and the customers of that view."""
    agents = locations.latest_positions(db.session, team_id=filters["team_id"],
                                        agent_ids=agent_ids)
    day_visits = visits.visits_for_day(db.session, clock.bank_today(),
                                       team_id=filters["team_id"], agent_ids=agent_ids)
    fitted = (maps.first_view_bounds(agents, day_visits)
              or visits.customer_extent(db.session, team_id=filters["team_id"],
                                        agent_ids=agent_ids))
    if fitted is None:
        return jsonify({"total": 0, "in_view": 0, "clusters": [], "customers": [],
                        "view": None})
    size = _map_size()
    center, zoom = maps.fit_view(fitted, size)
    clusters = visits.customer_clusters(db.session, zoom=zoom,
                                        bbox=maps.view_box(center, zoom, size),
                                        team_id=filters["team_id"], agent_ids=agent_ids)
    view = json.dumps({"zoom": zoom, "bounds": fitted})
    return _json_text(f'{clusters[:-1]},"view":{view}}}')  # PostgreSQL's object, a key more


def _json_text(body: str):
    return current_app.response_class(body, mimetype="application/json",
                                      headers={"Cache-Control": "no-store"})


@bp.get("/map/data")
@permission_required("field.track")
def map_data():
    """Latest agent positions, today's visits and (``customers=1``) the team's customers."""
    filters = _filters()
    agent_ids = _agents_shown(filters)
    body = _map_body(filters, clock.now(), agent_ids)
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
    return jsonify(_route_of(agent_id, day))


def _route_of(agent_id: int, day: date) -> dict:
    """The agent's route of ``day`` with their name (404: no such field agent; the agent's
    scope is checked by ``permission_required``)."""
    agent = queries.field_agent(db.session, agent_id)
    if agent is None:
        abort(404)
    route = locations.route_history(db.session, agent_id, day)
    route["agent"] = agent.full_name
    return route


@bp.get("/map/agents/<int:agent_id>/route.js")
@permission_required("field.track")
def route_script(agent_id: int):
    """An agent's route of today, drawn by folium onto the field map already on the page."""
    return maps.javascript_response(maps.route_script(_route_of(agent_id, clock.bank_today())))


# --- positions refused for good --------------------------------------------------------------


@bp.get("/rejected")
@permission_required("field.rejected_positions")
def rejected():
    """Positions phones sent that can never be accepted: counts per reason and the latest, for
    supervisors (their teams' agents) and ops and admins (everyone's)."""
    agent_ids = None if can("ops.integrations") \
        else queries.reviewable_agent_ids(db.session, current_user)
    return render_template("field/rejected.html",
                           summary=rejections.summary(db.session, agent_ids=agent_ids),
                           rows=rejections.latest(db.session, agent_ids=agent_ids),
                           limit=rejections.LATEST_LIMIT)


# --- reviews ---------------------------------------------------------------------------------


@bp.get("/reviews")
@permission_required("field.review")
def reviews():
    rows = visits.pending_reviews(
        db.session, agent_ids=queries.reviewable_agent_ids(db.session, current_user))
    return render_template("field/reviews.html", rows=rows,
                           radius_m=visits.radius_m(), max_accuracy_m=visits.max_accuracy_m())


@bp.post("/reviews/<int:visit_id>")
@permission_required("field.review")
def review_visit(visit_id: int):
    visit = queries.locked_visit(db.session, visit_id)
    if visit is None:
        abort(404)
    form = ReviewForm()
    if not form.decided():
        abort(400, description=_("Choose approve or reject."))
    try:
        visits.review(db.session, visit, reviewer=current_user, approve=form.approves(),
                      note=form.note.data)
    except visits.VisitError as exc:
        db.session.rollback()
        row = queries.review_row(db.session, visit)
        if row is None:
            abort(409, description=str(exc))
        return render_template("field/_review_row.html", r=row, errors=exc.errors,
                               note=form.note.data or ""), 422
    db.session.commit()
    if partial_request():
        return render_template("field/_review_row.html", r=None, done=visit,
                               decision=form.decision.data)
    flash(_("Visit %(id)s approved.", id=visit_id) if form.approves()
          else _("Visit %(id)s rejected.", id=visit_id), "success")
    return redirect(url_for("field.reviews"))


# --- planning (supervisor) -------------------------------------------------------------------


@bp.post("/plan")
@permission_required("supervisor.assign")
def plan():
    form = PlanVisitForm()
    try:
        visit = visits.plan_visit(db.session, cif=form.cif.data, agent_id=form.agent_id.data,
                                  planned_for=form.planned_for.data, planned_by=current_user,
                                  notes=form.notes.data)
    except visits.VisitError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash(_("Visit not planned: %(reason)s", reason=" ".join(exc.errors.values())), "error")
        return redirect(request.referrer or url_for("field.map"))
    db.session.commit()
    flash(_("Visit to %(cif)s planned for %(day)s.", cif=visit.cif,
            day=format_date(visit.planned_for)), "success")
    return redirect(request.referrer or url_for("field.map"))


# --- the field agent's day -------------------------------------------------------------------


def _my_day_context(**extra) -> dict:
    today = clock.bank_today()
    return {"today": today, **queries.agent_day(db.session, current_user, today),
            "map_assets": maps.assets(maps.agent_day_map({})),
            "map_script_url": url_for("field.visits_map_script"), **extra}


@bp.get("/visits", endpoint="visits")
@permission_required("field.visits")
def visits_page():
    return render_template("field/my_day.html", **_my_day_context())


@bp.get("/visits/map.js")
@permission_required("field.visits")
def visits_map_script():
    """The field agent's map of today, as folium draws it."""
    day = queries.agent_day(db.session, current_user, clock.bank_today())
    return maps.javascript_response(maps.script(maps.agent_day_map(day["map_points"])))


# --- a customer's location (on the case view) -------------------------------------------------


@bp.get("/customers/<cif>/location")
@permission_required("cases.view")
def customer_location(cif: str):
    """The case view's map card of where a visit goes (loaded into the page; nothing when the
    customer has no located address)."""
    place = visits.customer_location(db.session, cif)
    if place is None:
        return ""
    return render_template("field/_customer_location.html", cif=cif, place=place,
                           map_assets=maps.assets(maps.customer_location_map(**_place(place))))


@bp.get("/customers/<cif>/location.js")
@permission_required("cases.view")
def customer_location_script(cif: str):
    """That map, as folium draws it."""
    place = visits.customer_location(db.session, cif)
    if place is None:
        abort(404)
    return maps.javascript_response(maps.script(maps.customer_location_map(**_place(place))))


def _place(place: dict) -> dict:
    return {k: place[k] for k in ("name", "address", "lat", "lon", "bucket")}


@bp.post("/visits/plan")
@permission_required("field.visits")
def plan_own():
    form = PlanVisitForm()
    try:
        visit = visits.plan_visit(db.session, cif=form.cif.data, agent_id=current_user.id,
                                  planned_for=clock.bank_today(), planned_by=current_user,
                                  notes=form.notes.data)
    except visits.VisitError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash(_("Visit not planned: %(reason)s", reason=" ".join(exc.errors.values())), "error")
        return redirect(url_for("field.visits"))
    db.session.commit()
    flash(_("Visit to %(cif)s added to today's plan.", cif=visit.cif), "success")
    return redirect(url_for("field.visits"))


@bp.post("/visits/<int:visit_id>/outcome")
@permission_required("field.visits")
def outcome(visit_id: int):
    visit = queries.locked_visit(db.session, visit_id)
    if visit is None:
        abort(404)
    form = VisitOutcomeForm()
    data, errors = form.action_input()
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
            form_errors=errors, form_visit_id=visit_id, form_values=form.submitted(),
            refusal=refusal)), 422
    db.session.commit()
    flash(_("Visit outcome saved to the customer's timeline."), "success")
    return redirect(url_for("field.visits"))
