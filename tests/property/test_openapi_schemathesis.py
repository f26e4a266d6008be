"""Schemathesis over the OpenAPI document of /api/v1: every operation, generated requests
(valid and invalid parameters, bodies, unknown ids), with a valid token and with hostile ones.
Each answer must be documented: no 5xx, a documented status, the documented content type and
a body matching the documented schema."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from portal import clock
from portal.api.openapi import PREFIX
from portal.models import Action, Case, Promise, Visit
from portal.permissions import tokens as api_tokens
from tests.field_support import field_team, make_field_agent  # noqa: F401 - fixtures

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def schema(app):
    return schemathesis.openapi.from_wsgi(f"{PREFIX}/openapi.json", app)


@pytest.fixture
def world(db, make_customer, make_loan, make_phone, make_field_agent):
    customers = [make_customer(national_id=f"0790{i:08d}") for i in range(2)]
    for c in customers:
        make_loan(customer=c, dpd=45)
        make_phone(c, "0912345678")
        db.session.add(Case(cif=c.cif))
        db.session.add(Action(cif=c.cif, type="CALL", at=datetime(2026, 11, 1, 9, tzinfo=UTC)))
        db.session.add(Promise(cif=c.cif, amount=Decimal("1000000"),
                               promised_date=date(2026, 11, 30), status="pending"))
    agent = make_field_agent()
    db.session.flush()
    visit = Visit(cif=customers[0].cif, agent_id=agent.id, planned_for=clock.bank_today(),
                  status="planned", planned_by_id=agent.id)
    db.session.add(visit)
    _, system = api_tokens.create_token(db.session, name="bank system",
                                        scopes=list(api_tokens.API_SCOPES), user=None,
                                        created_by="test")
    _, phone = api_tokens.create_token(db.session, name="phone",
                                       scopes=["api.locations", "api.visits", "api.profile"],
                                       user=agent, created_by="test")
    db.session.commit()
    return {"cif": customers[0].cif, "visit_id": visit.id, "system": system, "phone": phone}


def operations(schema):
    found = [result.ok() for result in schema.get_all_operations()]
    # every /api/v1 route and method, the webhooks included
    assert len(found) >= 23, [o.label for o in found]
    return found


def known_ids(case, world, data) -> None:
    """Half the time, a path id that exists (else the generated one, mostly unknown)."""
    if case.path_parameters and data.draw(st.booleans()):
        for name in case.path_parameters:
            case.path_parameters[name] = world["cif"] if name == "cif" else world["visit_id"]


def token_for(operation, world) -> str:
    scope = operation.definition.raw.get("x-scope")
    return world["phone"] if scope in ("api.locations", "api.visits") else world["system"]


def run_valid(operation, world, examples: int) -> None:
    headers = {"Authorization": f"Bearer {token_for(operation, world)}"}

    @settings(settings(), max_examples=examples)
    @given(case=operation.as_strategy(), data=st.data())
    def check(case, data):
        known_ids(case, world, data)
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


def test_every_operation_answers_as_documented_with_a_valid_token(schema, world):
    for operation in operations(schema):
        run_valid(operation, world, max(5, settings().max_examples // 2))


HOSTILE = ["", "Bearer", "Bearer ", "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 5000,
           "Bearer ' OR 1=1 --", "Bearer {valid}x", "bearer {valid}", "Bearer {valid} {valid}",
           "Bearer ../../etc/passwd", "Bearer \u00e9\u00e8"]


def unroutable(case) -> bool:
    """A generated path parameter that makes the URL match no route at all (empty, holding a
    "/", or a dot segment): the answer is the router's 404, before any authentication."""
    return any(not str(v) or "/" in str(v) or str(v) in (".", "..")
               for v in (case.path_parameters or {}).values())


def run_hostile(operation, world) -> None:
    valid = token_for(operation, world)
    scoped = bool(operation.definition.raw.get("x-scope"))

    @settings(settings(), max_examples=5)
    @given(case=operation.as_strategy(), raw=st.sampled_from(HOSTILE), data=st.data())
    def check(case, raw, data):
        known_ids(case, world, data)
        value = raw.format(valid=valid)
        headers = {"Authorization": value} if value else {}
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        # (the scheme is case-insensitive, RFC 7235: "bearer <token>" is the valid token)
        if scoped and raw != "bearer {valid}" and not unroutable(case):
            assert response.status_code in (401, 403), (case.formatted_path, value[:40],
                                                        response.status_code)

    check()


def test_every_operation_refuses_hostile_tokens_as_documented(schema, world):
    for operation in operations(schema):
        run_hostile(operation, world)
