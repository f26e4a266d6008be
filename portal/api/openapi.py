"""The OpenAPI 3.1 document of /api/v1, generated from the code: every /api/v1 route of the URL
map, with its methods, path parameters and security scope (from ``@api_permission_required``);
routes declared with ``portal.api.read.documented`` also carry their query parameters and
response schemas (below). Served at /api/v1/openapi.json."""

from __future__ import annotations

import re

from flask import current_app, jsonify

from portal.api.openapi_routes import ROUTES
from portal.api.openapi_routes import SCHEMAS as ROUTE_SCHEMAS
from portal.api.views import bp
from portal.extensions import limiter
from portal.models.enums import BUCKET_NAMES
from portal.permissions.decorators import public, route_protection
from portal.permissions.roles import PERMISSIONS

PREFIX = "/api/v1"
# the document is public: a client reads it once, a scanner reads it in a loop
DOCUMENT_RATE_LIMIT = "120 per minute"

S = {"type": "string"}
S_NULL = {"type": ["string", "null"]}
DATE = {"type": ["string", "null"], "format": "date"}
DATETIME = {"type": ["string", "null"], "format": "date-time"}
MONEY = {"type": ["string", "null"], "pattern": r"^-?\d+(\.\d+)?$",
         "description": "Decimal amount as a string (exact)."}
INT = {"type": "integer"}
INT_NULL = {"type": ["integer", "null"]}
NUM_NULL = {"type": ["number", "null"]}
BOOL = {"type": "boolean"}


def _obj(props: dict) -> dict:
    return {"type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


def _list(ref: str) -> dict:
    return _obj({"data": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}})


def _page(ref: str) -> dict:
    return _obj({"data": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}},
                 "limit": INT, "next_cursor": S_NULL})


SCHEMAS: dict[str, dict] = {
    "Error": _obj({"error": _obj({"code": S, "message": S})}),
    "Customer": _obj({
        "cif": S, "type": S, "name": S, "date_of_birth": DATE,
        "national_id": {**S_NULL, "description": "Masked (•••1234) without customers.view_pii."},
        "gender": S_NULL, "company_name": S_NULL, "segment": S_NULL, "status": S,
        "source_system": S, "last_synced_at": DATETIME, "updated_at": DATETIME}),
    "Phone": _obj({"id": INT, "type": S,
                   "number": {**S, "description": "E.164 (+84912345678); masked without "
                                             "customers.view_pii."},
                   "is_primary": BOOL, "is_verified": BOOL, "do_not_contact": BOOL,
                   "source_system": S}),
    "Address": _obj({"id": INT, "type": S, "line1": S, "line2": S_NULL, "ward": S_NULL,
                     "district": S_NULL, "city": S_NULL, "province": S_NULL, "country": S,
                     "lat": NUM_NULL, "lon": NUM_NULL, "is_primary": BOOL, "is_verified": BOOL,
                     "source_system": S}),
    "Email": _obj({"id": INT, "type": S, "address": S, "is_primary": BOOL,
                   "is_verified": BOOL, "source_system": S}),
    "Contacts": _obj({"cif": S,
                      "phones": {"type": "array", "items": {"$ref": "#/components/schemas/Phone"}},
                      "addresses": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Address"}},
                      "emails": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Email"}}}),
    "Loan": _obj({"account_number": S, "cif": S, "product_type": S, "currency": S,
                  "original_amount": MONEY, "outstanding": MONEY, "due_amount": MONEY,
                  "min_pay": MONEY, "next_payment_date": DATE, "dpd": INT,
                  "bucket": {"type": "string", "enum": list(BUCKET_NAMES)}, "status": S,
                  "disbursement_date": DATE, "maturity_date": DATE, "source_system": S}),
    "Card": _obj({"contract_number": S, "cif": S, "masked_card_number": S, "product": S_NULL,
                  "currency": S, "credit_limit": MONEY, "outstanding": MONEY, "min_due": MONEY,
                  "due_date": DATE, "days_overdue": INT,
                  "bucket": {"type": "string", "enum": list(BUCKET_NAMES)}, "status": S}),
    "Collateral": _obj({"collateral_number": S, "cif": S, "type": S, "description": S_NULL,
                        "value": MONEY, "currency": S, "valuation_date": DATE,
                        "accounts": {"type": "array", "items": S}}),
    "Case": _obj({"id": INT, "cif": S, "status": S, "processing_state": S, "priority": INT,
                  "max_dpd": INT, "total_overdue": MONEY, "total_outstanding": MONEY,
                  "assigned_agent": {**S_NULL, "description": "Username."},
                  "assigned_field_agent": {**S_NULL, "description": "Username."},
                  "next_action_at": DATETIME, "last_contact_at": DATETIME}),
    "Action": _obj({"id": INT, "cif": S, "account_number": S_NULL, "type": S,
                    "subtype": S_NULL, "result": S_NULL, "at": DATETIME, "agent_id": INT_NULL,
                    "notes": S_NULL, "source": S, "follow_up_date": DATE}),
    "Promise": _obj({"id": INT, "cif": S, "account_number": S_NULL, "amount": MONEY,
                     "currency": S, "promised_date": DATE, "status": S, "paid_amount": MONEY,
                     "agent_id": INT_NULL, "created_at": DATETIME, "resolved_at": DATETIME}),
    "Payment": _obj({"id": INT, "reference_number": S, "cif": S, "account_number": S,
                     "amount": MONEY, "currency": S, "paid_at": DATETIME, "channel": S_NULL,
                     "status": S, "source": S}),
    "CustomerPage": _page("Customer"),
    "LoanList": _list("Loan"),
    "LoanPage": _page("Loan"),
    "CardList": _list("Card"),
    "CollateralList": _list("Collateral"),
    "ActionPage": _page("Action"),
    "PromisePage": _page("Promise"),
    "PaymentPage": _page("Payment"),
    "CasePage": _page("Case"),
}

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
NO_NUL = "^[^\\u0000]*$"
NO_NUL_OR_SLASH = "^[^\\u0000/]+$"


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}


def _path_and_params(rule: str) -> tuple[str, list[dict]]:
    params = []

    def repl(match):
        converter, name = match.group(1) or "string", match.group(2)
        # werkzeug's int converter matches digits only: a negative id is no route at all
        schema = {"type": "integer", "minimum": 0} if converter == "int" else \
            {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL_OR_SLASH}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _CONVERTER.sub(repl, rule), params


def _response(status: int, schema_name: str | None) -> dict:
    schema = {"$ref": f"#/components/schemas/{schema_name}"} if schema_name else \
        {"type": "object"}
    return {"description": HTTP_STATUS_TEXT.get(status, str(status)),
            "content": {"application/json": {"schema": schema}}}


HTTP_STATUS_TEXT = {200: "OK", 201: "Created", 400: "Invalid request.",
                    429: "Too many requests from this address; try again later.",
                    401: "No or invalid credentials (or signature).",
                    403: "Not allowed (scope, role or device).", 404: "Not found.",
                    409: "Conflicts with the current state.", 413: "Too large.",
                    422: "Refused (the reason is in the error)."}


def _describe(op: dict, route: dict, method: str, kind: str) -> None:
    """Parameters, body and responses of a route described in portal/api/openapi_routes.py."""
    op["parameters"].extend(route.get("params", ()))
    if "body" in route and method != "GET":
        op["requestBody"] = {"required": True, "content": {
            media: {"schema": schema} for media, schema in route["body"].items()}}
    statuses = dict(route["responses"])
    if kind == "api":
        statuses.update({401: "Refusal", 403: "Refusal"})
    op["responses"] = {str(status): _response(status, name)
                       for status, name in sorted(statuses.items())}


def build_document(app) -> dict:
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        view = app.view_functions[rule.endpoint]
        kind, scope = route_protection(view)
        path, path_params = _path_and_params(rule.rule[len(PREFIX):])
        spec = getattr(view, "_openapi", None)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            doc = (view.__doc__ or "").strip()
            op: dict = {
                "operationId": f"{rule.endpoint.replace('.', '_')}_{method.lower()}",
                "summary": spec["summary"] if spec else (doc.splitlines()[0] if doc
                                                         else rule.endpoint),
                "tags": [rule.endpoint.split(".")[0]],
                "parameters": list(path_params),
            }
            if doc:
                op["description"] = doc
            if spec:
                for p in spec["params"]:
                    schema = dict(p.schema)
                    if schema.get("type") == "string" and not ({"enum", "pattern", "format"}
                                                               & set(schema)):
                        schema["pattern"] = NO_NUL
                    op["parameters"].append({"name": p.name, "in": "query", "required": False,
                                             "description": p.description, "schema": schema})
                op["responses"] = {
                    "200": {"description": "OK", "content": {"application/json": {
                        "schema": {"$ref": f"#/components/schemas/{spec['response']}"}}}},
                    "400": _error("Invalid parameter."),
                    "401": _error("No or invalid credentials."),
                    "403": _error("The token lacks the scope."),
                }
                if spec["not_found"]:
                    op["responses"]["404"] = _error("No such customer or case.")
            elif rule.endpoint in ROUTES:
                _describe(op, ROUTES[rule.endpoint], method, kind)
            else:
                op["responses"] = {"default": {"description": "See the area's documentation "
                                               "(docs/integrations.md)."}}
            if kind == "api":
                op["security"] = [{"bearer": [scope]}]
                op["x-scope"] = scope
            elif kind == "public":
                op["security"] = []
                op["description"] = (op.get("description", "") +
                                     "\n\nPublic route (signed webhook or description).").strip()
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Collection CRM API", "version": "1.0.0",
                 "license": {"name": "Proprietary: licensed to the bank that runs it"},
                 "description": "Customer 360 read API for other bank systems, and the "
                                "phone/call-centre/payment routes of the portal. Authenticate "
                                "with 'Authorization: Bearer <token>' (tokens are scoped). See "
                                "docs/api.md."},
        "servers": [{"url": PREFIX}],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **ROUTE_SCHEMAS},
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "API token; scopes: " + ", ".join(
                    f"{k} ({v})" for k, v in PERMISSIONS.items() if k.startswith("api."))}},
        },
        "security": [{"bearer": []}],
    }


@bp.get("/openapi.json")
@public
@limiter.limit(DOCUMENT_RATE_LIMIT)
def openapi_document():
    """This document (public: it describes the API, it holds no data)."""
    return jsonify(build_document(current_app))
