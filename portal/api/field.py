"""Field work API for phones: GPS positions (our JSON and the OsmAnd / Traccar Client protocol),
the visit plan, check-in, suggestions of nearby customers, and the agent's route.

The agent is the user the API token belongs to (a device token). A system token (no user, e.g. a
tracking gateway) names the agent by a registered device id (``field_devices``). Wire formats
and refusal codes: docs/integrations.md ("GPS")."""

from __future__ import annotations

from datetime import date
from functools import wraps
from urllib.parse import parse_qsl

from flask import g, jsonify, request
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from integrations.gps import forward
from integrations.gps.verify import remote_verifier
from portal import clock
from portal.api.views import bp
from portal.extensions import db
from portal.field import locations, visits
from portal.field.queries import locked_visit
from portal.models import User, Visit
from portal.models.field import FieldDevice
from portal.ops import traffic
from portal.permissions.decorators import api_error, api_permission_required
from portal.text import storable


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.response = api_error(status, code, message)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _sent_as_json() -> bool:
    """A JSON body: declared so, or (no Content-Type) one that starts as a JSON object."""
    if request.is_json:
        return True
    if request.mimetype:
        return False
    return request.get_data(cache=True).lstrip()[:1] == b"{"


def osmand_values() -> CombinedMultiDict:
    """The OsmAnd fields of a request: its query string, then its body read as a query string
    whatever the Content-Type says (Traccar's decoder does so: clients post ``id=…&lat=…`` as
    a form, as text/plain, or with no Content-Type at all)."""
    if request.mimetype in FORM_TYPES:
        body = request.form
    elif _sent_as_json():
        body = MultiDict()
    else:
        text_body = request.get_data(cache=True).decode("utf-8", "replace")
        body = MultiDict(parse_qsl(text_body.strip(), keep_blank_values=True))
    return CombinedMultiDict([request.args, body])


def token_in_query(view):
    """Trackers such as the Traccar Client cannot send headers: accept ``?token=`` (or a field
    of a query-string body) as the Bearer token. Outside ``api_permission_required`` so that
    one still decides."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        raw = osmand_values().get("token")
        if raw and "HTTP_AUTHORIZATION" not in request.environ:
            request.environ["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
        return view(*args, **kwargs)

    return wrapped


def _json_body():
    """The request's JSON, or None when it is not JSON — nested too deep for the decoder
    included (a RecursionError, which Flask's ``silent`` does not catch)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def _caller() -> User | None:
    principal = g.api_principal
    return db.session.get(User, principal.user_id) if principal.user_id else None


def _device_key(device_id) -> str | None:
    """The device id as the key of ``field_devices`` (64 characters); refused when a text
    column cannot hold it."""
    if not device_id:
        return None
    key = str(device_id)[:64]
    if not storable(key):
        raise _Refusal(400, "invalid_device", "The device id holds a NUL or an invalid "
                                              "character.")
    return key


def _field_agent(device_id: str | None = None) -> User:
    """The field agent a request posts for: the token's user, or the registered device."""
    user = _caller()
    device_id = _device_key(device_id)
    device = db.session.get(FieldDevice, device_id) if device_id else None
    if user is not None:
        if user.role != "field_agent":
            raise _Refusal(403, "not_a_field_agent",
                           f"User {user.username} is not a field agent.")
        if device is not None and device.agent_id != user.id:
            raise _Refusal(403, "device_mismatch",
                           f"Device {device_id} is registered to another agent.")
    else:
        if not device_id:
            raise _Refusal(422, "device_required",
                           "A token without a user must name the device ('id' / 'device_id').")
        if device is None:
            raise _Refusal(404, "unknown_device", f"Device {device_id} is not registered.")
        user = device.agent
        if user is None or not user.active or user.role != "field_agent":
            raise _Refusal(403, "agent_inactive",
                           f"The agent of device {device_id} is not an active field agent.")
    if device is not None:
        now = clock.now()
        if device.last_seen_at is None or (now - device.last_seen_at).total_seconds() > 60:
            device.last_seen_at = now
    return user


# a point a little ahead of our clock is acceptable in at most LOCATION_FUTURE_RETRY_S
RETRY_AFTER_S = 60


def _refusal_response(result: locations.IngestResult, refusal: dict, status: int):
    response = jsonify({"error": {"code": refusal["code"], "message": refusal["message"]},
                        **result.as_dict()})
    response.status_code = status
    if refusal["retry"]:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _ingest_response(result: locations.IngestResult, single: bool):
    db.session.commit()
    if result.accepted:
        forward.request_forward()
    if single and result.refused:  # our JSON API: a 4xx is not sent again (refused for good
        return _refusal_response(result, result.refused[0], 422)  # ones are kept as rejected)
    return jsonify(result.as_dict())


@bp.post("/field/locations")
@traffic.counted("GPS")
@api_permission_required("api.locations")
def post_locations():
    """One point (an object with ``lat``), or ``{"points": [...]}`` / a JSON list (≤ 1,000)."""
    body = _json_body()
    if body is None:
        return api_error(400, "malformed_json", "Send a JSON object or list "
                                                "(Content-Type: application/json).")
    single = isinstance(body, dict) and "points" not in body
    device_id = body.get("device_id") if isinstance(body, dict) else None
    points = [body] if single else body.get("points") if isinstance(body, dict) else body
    if not isinstance(points, list):
        return api_error(400, "malformed", "'points' must be a list of points.")
    if not points:
        return api_error(422, "empty_batch", "The batch has no points.")
    if len(points) > locations.MAX_BATCH:
        return api_error(413, "batch_too_large",
                         f"A batch holds at most {locations.MAX_BATCH} points "
                         f"(got {len(points)}).")
    try:
        agent = _field_agent(device_id)
    except _Refusal as refusal:
        return refusal.response
    locations.relax_commit(db.session)
    result = locations.ingest(db.session, agent.id, points, source="api",
                              device_id=_device_key(device_id))
    return _ingest_response(result, single)


@bp.route("/field/osmand", methods=["GET", "POST"])
@traffic.counted("GPS")
@token_in_query
@api_permission_required("api.locations")
def osmand():
    """The OsmAnd protocol of the Traccar Client: query string, a query-string body (a form,
    text, or no Content-Type), or the JSON of Traccar Client 9+. ``timestamp`` may be Unix
    seconds or milliseconds, ISO 8601, or ``yyyy-MM-dd HH:mm:ss`` (read in
    OSMAND_NAIVE_TIMEZONE, default UTC); without one the time of receipt is used (stored with
    ``time_source = received``). ``accuracy`` 0 means unknown. ``heading`` is taken as
    ``bearing``; ``altitude`` and the other Traccar fields are accepted and not stored.

    A point that can never be accepted (too old, impossible coordinates, a time far ahead, a
    value out of range, unreadable) answers 200 and is kept as rejected with its reason (the
    client would otherwise resend it forever, blocking the points behind it). Only what can
    succeed later answers otherwise: a time a little ahead of the server's (409, Retry-After),
    an unregistered device (404), a token or device not allowed (401/403)."""
    now = clock.now()
    if _sent_as_json():
        body = _json_body()
        if not isinstance(body, dict):
            return api_error(400, "malformed_json", "Send the Traccar Client JSON object.")
        device_id = body.get("device_id") or body.get("id")
        try:
            _, points = locations.parse_osmand_json(body, now=now)
            sent = body.get("location", body.get("locations"))
            sent = sent if isinstance(sent, list) else [sent]
        except locations.PointRefused as exc:  # no location in it: one point, unreadable
            points, sent = [exc], [body]
    else:
        params = osmand_values()
        device_id = params.get("id") or params.get("deviceid")
        try:
            _, point = locations.parse_osmand_params(params, now=now)
            points = [point]
        except locations.PointRefused as exc:  # answered below with its reason
            points = [exc]
        sent = [params]
    if len(points) > locations.MAX_BATCH:
        return api_error(413, "batch_too_large",
                         f"A batch holds at most {locations.MAX_BATCH} points.")
    try:
        agent = _field_agent(device_id)
        device_key = _device_key(device_id)
    except _Refusal as refusal:
        return refusal.response
    locations.relax_commit(db.session)
    result = locations.ingest(db.session, agent.id, points, source="osmand", now=now,
                              sent=sent, device_id=device_key)
    db.session.commit()
    if result.accepted:
        forward.request_forward()
    if result.retryable:  # the tracker keeps the point and sends it again
        return _refusal_response(result, result.retryable[0], 409)
    return jsonify(result.as_dict())


def _visit_json(v: dict | Visit) -> dict:
    if isinstance(v, Visit):
        return {"id": v.id, "cif": v.cif, "agent_id": v.agent_id,
                "planned_for": v.planned_for.isoformat(), "status": v.status,
                "verification": v.verification, "verification_source": v.verification_source,
                "distance_m": None if v.distance_m is None else float(v.distance_m),
                "checked_in_at": v.checked_in_at.isoformat() if v.checked_in_at else None}
    return {"id": v["id"], "cif": v["cif"], "customer": v["customer_name"],
            "agent_id": v["agent_id"], "planned_for": v["planned_for"].isoformat(),
            "status": v["status"], "verification": v["verification"],
            "address": v["line1"], "district": v["district"],
            "lat": None if v["lat"] is None else float(v["lat"]),
            "lon": None if v["lon"] is None else float(v["lon"]),
            "distance_m": None if v["distance_m"] is None else float(v["distance_m"]),
            "checked_in_at": v["checked_in_at"].isoformat() if v["checked_in_at"] else None}


# the days a route or a visit list can be asked for (a bank day's bounds in UTC must exist)
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _day_arg() -> date:
    raw = request.args.get("date")
    if not raw:
        return clock.bank_today()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise _Refusal(400, "invalid_date", "date must be YYYY-MM-DD.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise _Refusal(400, "invalid_date", f"date must be between {FIRST_DAY} and "
                                            f"{LAST_DAY}.")
    return day


@bp.get("/field/visits")
@api_permission_required("api.visits")
def list_visits():
    """The calling agent's visits of a day (``?date=``, default today), in a short route order."""
    try:
        agent = _field_agent()
        day = _day_arg()
    except _Refusal as refusal:
        return refusal.response
    rows = visits.visits_for_day(db.session, day, agent_ids=[agent.id])
    route = visits.plan_my_day(db.session, agent, day)
    return jsonify({"date": day.isoformat(), "visits": [_visit_json(v) for v in rows],
                    "route": route})


@bp.post("/field/visits")
@api_permission_required("api.visits")
def plan_visit():
    body = _json_body()
    if not isinstance(body, dict):
        return api_error(400, "malformed_json", "Send a JSON object.")
    try:
        agent = _field_agent()
        day = date.fromisoformat(body["planned_for"]) if body.get("planned_for") else None
    except _Refusal as refusal:
        return refusal.response
    except (TypeError, ValueError):
        return api_error(422, "invalid", "planned_for must be YYYY-MM-DD.")
    cif, notes = body.get("cif"), body.get("notes")
    if cif is not None and not isinstance(cif, str | int) or not storable(str(cif or "")):
        return api_error(422, "invalid", "cif must be a customer number.")
    if notes is not None and not (isinstance(notes, str) and storable(notes)):
        return api_error(422, "invalid", "notes must be text.")
    try:
        visit = visits.plan_visit(db.session, cif=str(cif or ""),
                                  agent_id=agent.id, planned_for=day, planned_by=agent,
                                  notes=notes)
    except visits.VisitError as exc:
        db.session.rollback()
        return _visit_error(exc)
    db.session.commit()
    response = jsonify(_visit_json(visit))
    response.status_code = 201
    return response


def _visit_error(exc: visits.VisitError):
    response = jsonify({"error": {"code": exc.code, "message": str(exc),
                                  "fields": exc.errors}})
    response.status_code = exc.status
    return response


@bp.post("/field/visits/<int:visit_id>/checkin")
@api_permission_required("api.visits")
def checkin(visit_id: int):
    """``{"lat", "lon", "accuracy_m", "recorded_at"?}`` → the visit with its verification."""
    body = _json_body()
    if not isinstance(body, dict):
        return api_error(400, "malformed_json", "Send a JSON object.")
    try:
        agent = _field_agent()
    except _Refusal as refusal:
        return refusal.response
    visit = locked_visit(db.session, visit_id)
    if visit is None:
        return api_error(404, "not_found", f"No visit {visit_id}.")
    at = None
    if body.get("recorded_at"):
        try:
            at = locations.parse_timestamp(body["recorded_at"])
        except locations.PointRefused as exc:
            return api_error(422, exc.code, exc.message)
        now = clock.now()
        if at > now or (now - at).total_seconds() > 3600:
            return api_error(422, "invalid_timestamp",
                             "recorded_at must be within the last hour and not in the future.")
    for name in ("lat", "lon", "accuracy_m"):
        if body.get(name) is None:
            db.session.rollback()
            return api_error(422, "missing_field", f"{name} is required.")
    try:
        visit, decision = visits.checkin(db.session, visit, agent_id=agent.id, lat=body["lat"],
                                         lon=body["lon"], accuracy_m=body["accuracy_m"], at=at,
                                         remote=remote_verifier())
    except visits.VisitError as exc:
        db.session.rollback()
        return _visit_error(exc)
    db.session.commit()
    return jsonify({**_visit_json(visit), "reason": decision.reason})


@bp.get("/field/suggestions")
@api_permission_required("api.visits")
def suggestions():
    """Customers near the agent's latest position (or ``?lat=&lon=``), by priority then
    distance; ``radius_km`` (default FIELD_NEARBY_KM), ``limit`` (≤ 100)."""
    try:
        agent = _field_agent()
        lat = float(request.args["lat"]) if request.args.get("lat") else None
        lon = float(request.args["lon"]) if request.args.get("lon") else None
        radius = float(request.args["radius_km"]) if request.args.get("radius_km") else None
        limit = min(100, max(1, int(request.args.get("limit", 20))))
    except _Refusal as refusal:
        return refusal.response
    except ValueError:
        return api_error(400, "invalid", "lat, lon, radius_km and limit must be numbers.")
    if radius is not None and not 0 < radius <= 50:  # (NaN fails every comparison)
        return api_error(400, "invalid", "radius_km must be between 0 and 50.")
    if lat is not None and not -90 <= lat <= 90 or lon is not None and not -180 <= lon <= 180:
        return api_error(400, "invalid", "lat must be between -90 and 90, lon between -180 "
                                         "and 180.")
    found = visits.suggestions(db.session, agent, lat=lat, lon=lon, radius_km=radius,
                               limit=limit)
    return jsonify(found)


@bp.get("/field/route")
@api_permission_required("api.locations")
def my_route():
    """The calling agent's route of a day (``?date=``): simplified line, distance, stops."""
    try:
        agent = _field_agent()
        day = _day_arg()
    except _Refusal as refusal:
        return refusal.response
    return jsonify(locations.route_history(db.session, agent.id, day))
