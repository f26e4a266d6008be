"""Read API: auth and scope, PII masking, paging and filters, the OpenAPI document matching the
URL map and the responses, GraphQL (batched loads, depth and cost limits)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import jsonschema
import pytest
from sqlalchemy import event

from portal.api.openapi import PREFIX
from portal.models import Action, Case, Promise
from portal.permissions import tokens as api_tokens


@pytest.fixture
def token(db, make_user):
    def make(scopes=("api.cases",), user=None):
        _row, raw = api_tokens.create_token(db.session, name="bank system", scopes=list(scopes),
                                            user=user, created_by="test")
        db.session.commit()
        return {"Authorization": f"Bearer {raw}"}
    return make


@pytest.fixture
def customer360(db, make_customer, make_loan, make_phone):
    customers = [make_customer(national_id=f"0790{i:08d}") for i in range(3)]
    for c in customers:
        make_loan(customer=c, dpd=45)
        make_phone(c, "0912345678")
        db.session.add(Case(cif=c.cif))
        for k in range(4):
            db.session.add(Action(cif=c.cif, type="CALL", at=datetime(2026, 11, 1, 9, k,
                                                                      tzinfo=UTC)))
        db.session.add(Promise(cif=c.cif, amount=Decimal("1000000"),
                               promised_date=date(2026, 11, 30), status="pending"))
    db.session.commit()
    return customers


def doc(client):
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def validate(document, schema_name, body):
    schema = {**document, "$ref": f"#/components/schemas/{schema_name}"}
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        body)


def test_auth_and_scope(client, token, customer360):
    assert client.get(f"{PREFIX}/customers").status_code == 401
    wrong = token(scopes=("api.profile",))
    r = client.get(f"{PREFIX}/customers", headers=wrong)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "insufficient_scope"
    assert client.get(f"{PREFIX}/customers", headers=token()).status_code == 200


def test_masking_depends_on_the_principal(client, token, customer360, make_user):
    cif = customer360[0].cif
    system = client.get(f"{PREFIX}/customers/{cif}", headers=token()).get_json()
    assert system["national_id"].endswith(customer360[0].national_id[-4:])
    assert system["national_id"].startswith("•") and "0790" not in system["national_id"]
    phones = client.get(f"{PREFIX}/customers/{cif}/contacts", headers=token()).get_json()
    assert phones["phones"][0]["number"] == "+••••••••678"  # E.164, masked
    supervisor = make_user("supervisor")  # the role has customers.view_pii
    full = client.get(f"{PREFIX}/customers/{cif}", headers=token(user=supervisor)).get_json()
    assert full["national_id"] == customer360[0].national_id
    gql = client.post("/api/graphql", headers=token(), json={
        "query": f'{{ customer(cif: "{cif}") {{ nationalId phones {{ number }} }} }}'})
    assert gql.get_json()["data"]["customer"]["phones"][0]["number"] == "+••••••••678"


def test_keyset_paging_and_filters(client, token, customer360):
    headers = token()
    seen, cursor = [], None
    while True:
        url = f"{PREFIX}/customers?limit=2" + (f"&after={cursor}" if cursor else "")
        body = client.get(url, headers=headers).get_json()
        seen += [c["cif"] for c in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(c.cif for c in customer360)
    cif = customer360[0].cif
    first = client.get(f"{PREFIX}/customers/{cif}/actions?limit=3", headers=headers).get_json()
    assert len(first["data"]) == 3 and first["next_cursor"]
    rest = client.get(f"{PREFIX}/customers/{cif}/actions?limit=3&after={first['next_cursor']}",
                      headers=headers).get_json()
    assert len(rest["data"]) == 1 and rest["next_cursor"] is None
    assert client.get(f"{PREFIX}/customers?limit=500", headers=headers).status_code == 400
    bad = client.get(f"{PREFIX}/loans?bucket=nope", headers=headers)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_parameter"
    assert client.get(f"{PREFIX}/customers?colour=red", headers=headers).status_code == 400
    loans = client.get(f"{PREFIX}/loans?bucket=31-60", headers=headers).get_json()
    assert len(loans["data"]) == 3
    assert client.get(f"{PREFIX}/loans?bucket=current", headers=headers).get_json()["data"] == []
    assert client.get(f"{PREFIX}/customers/NOPE/loans", headers=headers).status_code == 404


def test_openapi_documents_every_route_with_its_methods_and_parameters(app, client):
    document = doc(client)
    assert document["openapi"].startswith("3.1")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = rule.rule[len(PREFIX):]
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", "{" + arg + "}").replace(f"<{arg}>",
                                                                         "{" + arg + "}")
        assert path in document["paths"], rule.rule
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = document["paths"][path].get(method.lower())
            assert op is not None, (rule.rule, method)
            names = {(p["name"], p["in"]) for p in op["parameters"]}
            assert {(a, "path") for a in rule.arguments} <= names
            spec = getattr(view, "_openapi", None)
            if spec:
                assert names - {(a, "path") for a in rule.arguments} == {
                    (p.name, "query") for p in spec["params"]}
    assert len([p for p in document["paths"] if p.startswith("/customers")]) == 10


def test_responses_match_the_documented_schemas(client, token, customer360):
    document = doc(client)
    headers = token()
    cif = customer360[0].cif
    for path, op in document["paths"].items():
        get = op.get("get")
        if not get or "200" not in get.get("responses", {}) or get.get("x-scope") != "api.cases":
            continue
        url = PREFIX + path.replace("{cif}", cif)
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.get_data(as_text=True))
        ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        validate(document, ref.rsplit("/", 1)[1], response.get_json())
        error = client.get(url, headers={"Authorization": "Bearer nope"})
        validate(document, "Error", error.get_json())


def test_graphql_customer_with_loans_promises_actions_in_fixed_queries(app, client, token,
                                                                       customer360, db):
    headers = token()
    query = """query($cifs: [String!]!) { customers(cifs: $cifs) { cif name
        loans { accountNumber dpd bucket } openPromises { amount promisedDate status }
        lastActions(limit: 2) { type at } case { status } } }"""
    def run(cifs):
        statements = []

        def count(*_args, **_kwargs):
            statements.append(1)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            r = client.post("/api/graphql", headers=headers,
                            json={"query": query, "variables": {"cifs": cifs}})
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        body = r.get_json()
        assert r.status_code == 200 and "errors" not in body, body
        return body["data"]["customers"], len(statements)

    cifs = [c.cif for c in customer360]
    run(cifs[:1])  # warm: the token's last_used_at is written once a minute
    _one, for_one = run(cifs[:1])
    result, for_three = run(cifs)
    assert [c["cif"] for c in result] == sorted(cifs)
    assert all(len(c["loans"]) == 1 and c["loans"][0]["bucket"] == "31-60" for c in result)
    assert all(len(c["openPromises"]) == 1 and len(c["lastActions"]) == 2 for c in result)
    # batched: token + customers + loans + open promises + actions + case + agents, whatever
    # the number of customers (no 1 + 4 per customer)
    assert for_three == for_one <= 8, (for_one, for_three)


def test_graphql_depth_and_cost_limits_refused_clearly(app, client, token, customer360):
    headers = token()
    deep = "{ customer(cif: \"X\") { loans { accountNumber } } }"
    assert "errors" not in client.post("/api/graphql", headers=headers,
                                       json={"query": deep}).get_json()
    too_deep = """{ __schema { types { fields { type { fields { type { fields { name }
        } } } } } } }"""
    r = client.post("/api/graphql", headers=headers, json={"query": too_deep})
    assert r.get_json()["errors"][0]["message"] == "Maximum introspection depth exceeded"
    app.config["GRAPHQL_MAX_DEPTH"] = 1
    try:
        r = client.post("/api/graphql", headers=headers, json={"query": deep})
    finally:
        app.config.pop("GRAPHQL_MAX_DEPTH")
    errors = r.get_json()["errors"]
    assert errors[0]["message"] == "'anonymous' exceeds maximum operation depth of 1", errors
    cifs = ", ".join(f'"C{i}"' for i in range(100))
    costly = f"{{ customers(cifs: [{cifs}]) {{ lastActions(limit: 100) {{ id type at }} }} }}"
    r = client.post("/api/graphql", headers=headers, json={"query": costly})
    errors = r.get_json()["errors"]
    assert any("exceeds the limit" in e["message"] for e in errors), errors
    assert "data" not in r.get_json() or r.get_json()["data"] is None
    mutation = client.post("/api/graphql", headers=headers,
                           json={"query": "mutation { x }"}).get_json()
    assert mutation["errors"]
    assert client.post("/api/graphql", json={"query": deep}).status_code == 401
