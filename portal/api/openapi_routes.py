"""OpenAPI descriptions of the /api/v1 routes that are not the read API: the phones' field
routes (GPS, OsmAnd, visits), the signed webhooks, /me and the document itself — their query
and header parameters, request bodies and every status they answer, with its schema. Read by
portal/api/openapi.py (keyed by endpoint); the wire formats are in docs/integrations.md."""

from __future__ import annotations

from portal.models.enums import IMPLAUSIBLE_REASONS

S = {"type": "string"}
S_NULL = {"type": ["string", "null"]}
INT = {"type": "integer"}
NUM = {"type": "number"}
NUM_NULL = {"type": ["number", "null"]}
BOOL = {"type": "boolean"}
ANY_OBJECT = {"type": "object"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _strict(props: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required,
            "additionalProperties": False}


SCHEMAS: dict[str, dict] = {
    # an API or webhook refusal: the code, a message, and (webhooks, forms) the field at fault;
    # a GPS refusal also carries the batch's counts beside it
    "Refusal": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": S, "message": S, "field": S_NULL,
            "fields": {"type": "object", "additionalProperties": S}}}}},
    "IngestResult": _strict({
        "received": INT, "accepted": INT, "duplicates": INT, "flagged": INT,
        # refused for good: kept in rejected_locations (retry false below)
        "rejected": INT,
        "refused": {"type": "array", "items": _strict({"index": INT, "code": S,
                                                        "message": S, "retry": BOOL})},
        # stored, but flagged and left out of routes, distances and verification
        "implausible": {"type": "array", "items": _strict({
            "index": INT, "reason": {"enum": list(IMPLAUSIBLE_REASONS)},
            "message": S})}}),
    "Point": {"type": "object", "required": ["lat", "lon", "recorded_at"], "properties": {
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "recorded_at": {"type": "string", "format": "date-time"},
        "accuracy_m": {"type": "number", "minimum": 0}, "speed": NUM, "heading": NUM,
        "battery": NUM, "device_id": S}},
    "Me": _strict({
        "authenticated_by": S,
        "user": {"type": ["object", "null"]},
        "token": {"type": ["object", "null"]},
        "scopes": {"type": "array", "items": S}}),
    "Visit": {"type": "object", "required": ["id", "cif", "status"], "properties": {
        "id": INT, "cif": S, "status": S, "planned_for": S, "verification": S_NULL,
        "distance_m": NUM_NULL}},
    "VisitDay": _strict({"date": S, "visits": {"type": "array", "items": _ref("Visit")},
                         "route": ANY_OBJECT}),
    "Route": {"type": "object", "required": ["agent_id", "date", "points", "line", "stops"],
              "properties": {"agent_id": INT, "date": S, "points": INT,
                             "line": {"type": "array"}, "stops": {"type": "array"}}},
    # event_id: required in crm-hmac; in the standard scheme the webhook-id stands in for it
    "CtiEvent": {"type": "object", "required": ["type", "occurred_at", "data"],
                 "properties": {
                     "event_id": {"type": "string", "minLength": 1, "maxLength": 100},
                     "type": {"enum": ["call.started", "call.answered", "call.ended",
                                       "agent.status_changed"]},
                     "occurred_at": {"type": "string", "format": "date-time"},
                     "data": ANY_OBJECT}},
    "CtiAccepted": {"type": "object", "required": ["accepted", "event_id"],
                    "properties": {"accepted": BOOL, "event_id": S}},
    # event_id: as CtiEvent's; the loan: loan_account_number (with cif), or the VietQR
    # payment reference (portal/messages/vietqr.py) in payment_reference or description
    "PaymentNotice": {"type": "object", "required": [
        "type", "reference_number", "amount", "currency", "paid_at"], "properties": {
        "event_id": S, "type": S, "reference_number": S, "loan_account_number": S, "cif": S,
        "payment_reference": S, "description": S,
        "amount": S, "currency": S, "paid_at": {"type": "string", "format": "date-time"},
        "channel": S, "metadata": ANY_OBJECT}},
    "PaymentAccepted": _strict({"payment_id": INT, "status": S, "duplicate": BOOL}),
}

# the sender's scheme (PAYMENT_WEBHOOK_SCHEME / CTI_WEBHOOK_SCHEME) says which set it sends
SIGNED = (
    {"name": "X-Timestamp", "in": "header", "required": False,
     "description": "crm-hmac scheme: unix seconds of sending (±300 s).", "schema": S},
    {"name": "X-Signature", "in": "header", "required": False,
     "description": "crm-hmac scheme: sha256=<hex HMAC-SHA256 of '{timestamp}.' + body>.",
     "schema": S},
    {"name": "webhook-id", "in": "header", "required": False,
     "description": "Standard Webhooks scheme: the message id, the same on every retry "
                    "(the idempotency key).", "schema": S},
    {"name": "webhook-timestamp", "in": "header", "required": False,
     "description": "Standard Webhooks scheme: unix seconds of sending (±300 s).", "schema": S},
    {"name": "webhook-signature", "in": "header", "required": False,
     "description": "Standard Webhooks scheme: space-separated 'v1,<base64 HMAC-SHA256 of "
                    "\"{webhook-id}.{timestamp}.\" + body>' (several while the key rotates).",
     "schema": S},
)


def _query(*names: tuple[str, dict, str]) -> tuple[dict, ...]:
    return tuple({"name": n, "in": "query", "required": False, "description": d, "schema": s}
                 for n, s, d in names)


DATE_QUERY = _query(("date", {"type": "string", "format": "date"}, "Bank day (default today)."))
OSMAND_QUERY = _query(
    ("id", S, "Device id (registered in field_devices for a token without a user)."),
    ("deviceid", S, "Same as id."),
    ("lat", S, "Latitude."), ("lon", S, "Longitude."),
    ("location", S, "'lat,lon' instead of lat and lon."),
    ("timestamp", S, "Unix seconds (below 2^31) or milliseconds, ISO 8601, or "
                     "'yyyy-MM-dd HH:mm:ss' (no zone: OSMAND_NAIVE_TIMEZONE, default UTC); "
                     "missing: the time of receipt."),
    ("accuracy", S, "Metres; 0 means unknown."),
    ("hdop", S, "Taken as the accuracy when there is none."),
    ("valid", S, "'false' or '0' flags the point (not_valid)."),
    ("mock", S, "'true' flags the point (mock_location)."),
    ("speed", S, "Knots."), ("bearing", S, "Degrees."), ("heading", S, "Same as bearing."),
    ("altitude", S, "Metres; accepted and not stored."), ("batt", S, "Percent."),
    ("token", S, "The Bearer token, for trackers that cannot send headers."),
)
OSMAND_FORM = {"type": "object", "properties": {p["name"]: S for p in OSMAND_QUERY}}
POINTS_BODY = {"anyOf": [
    _ref("Point"),
    {"type": "object", "required": ["points"], "properties": {
        "points": {"type": "array", "items": _ref("Point")}, "device_id": S}},
    {"type": "array", "items": _ref("Point")}]}
TRACCAR_JSON = {"type": "object", "properties": {
    "device_id": S, "location": {"type": ["object", "array"]}}}

API_ERRORS = (401, 403)  # no or bad token; a token without the scope (or not a field agent)

# endpoint -> its description; "responses": status -> schema name (None: no body described)
ROUTES: dict[str, dict] = {
    "api.post_locations": {
        "body": {"application/json": POINTS_BODY},
        "responses": {200: "IngestResult", 400: "Refusal", 404: "Refusal", 413: "Refusal",
                      422: "Refusal"}},
    "api.osmand": {
        "params": OSMAND_QUERY,
        "body": {"application/x-www-form-urlencoded": OSMAND_FORM,
                 "text/plain": {"type": "string", "description": "The same fields as a query "
                                "string (also read without a Content-Type)."},
                 "application/json": TRACCAR_JSON},
        # 200 also for points refused for good (kept as rejected); 409: a time a little ahead,
        # send it again later (Retry-After)
        "responses": {200: "IngestResult", 400: "Refusal", 404: "Refusal", 409: "Refusal",
                      413: "Refusal", 422: "Refusal"}},
    "api.list_visits": {"params": DATE_QUERY,
                        "responses": {200: "VisitDay", 400: "Refusal", 422: "Refusal"}},
    "api.plan_visit": {
        "body": {"application/json": {"type": "object", "required": ["cif"], "properties": {
            "cif": S, "planned_for": {"type": "string", "format": "date"}, "notes": S}}},
        "responses": {201: "Visit", 400: "Refusal", 404: "Refusal", 422: "Refusal"}},
    "api.checkin": {
        "body": {"application/json": {
            "type": "object", "required": ["lat", "lon", "accuracy_m"], "properties": {
                "lat": NUM, "lon": NUM, "accuracy_m": NUM,
                "recorded_at": {"type": "string", "format": "date-time"}}}},
        "responses": {200: "Visit", 400: "Refusal", 404: "Refusal", 409: "Refusal",
                      422: "Refusal"}},
    "api.suggestions": {
        "params": _query(("lat", NUM, "Latitude (default: the agent's latest position)."),
                         ("lon", NUM, "Longitude."),
                         ("radius_km", {"type": "number", "exclusiveMinimum": 0,
                                        "maximum": 50}, "Radius."),
                         ("limit", {"type": "integer", "minimum": 1, "maximum": 100},
                          "At most 100.")),
        "responses": {200: None, 400: "Refusal", 422: "Refusal"}},
    "api.my_route": {"params": DATE_QUERY,
                     "responses": {200: "Route", 400: "Refusal", 422: "Refusal"}},
    "api.me": {"responses": {200: "Me"}},
    "api.openapi_document": {"responses": {200: None, 429: "Refusal"}},
    "webhooks.cti_event": {
        "params": SIGNED, "body": {"application/json": _ref("CtiEvent")},
        "responses": {200: "CtiAccepted", 400: "Refusal", 401: "Refusal", 409: "Refusal",
                      413: "Refusal"}},
    "webhooks.payment_notification": {
        "params": SIGNED, "body": {"application/json": _ref("PaymentNotice")},
        "responses": {200: "PaymentAccepted", 201: "PaymentAccepted", 400: "Refusal",
                      401: "Refusal", 409: "Refusal", 413: "Refusal", 422: "Refusal"}},
}
