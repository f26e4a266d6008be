"""CSRF: every state-changing route of the app's url_map refuses a request without a valid
CSRF token (400), signed in or not. Only the API and the webhooks under /api/ are exempt:
they authenticate with a bearer token or an HMAC signature, never with the session cookie.

The walk reads the url_map, so a new form route is covered the day it is added, and the test
fails if it is exempted or otherwise answers without a token."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import IntegerConverter

from portal.permissions.decorators import route_protection
from tests.conftest import csrf_token_from

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
API_PREFIX = "/api/"


def state_changing_requests(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every POST/PUT/PATCH/DELETE rule, with sample arguments."""
    adapter = app.url_map.bind("localhost")
    out = []
    for rule in app.url_map.iter_rules():
        values = {name: 1 if isinstance(rule._converters[name], IntegerConverter) else "x1"
                  for name in rule.arguments}
        for method in sorted((rule.methods or set()) & STATE_CHANGING):
            out.append((rule.endpoint, method, adapter.build(rule.endpoint, values,
                                                             method=method)))
    return sorted(out)


def requests_answered_without_token(app: Flask, client, token: str | None = None
                                    ) -> list[tuple[str, str, int]]:
    """Form routes (outside /api/) that do not refuse the request with the CSRF 400."""
    wrong = []
    for endpoint, method, url in state_changing_requests(app):
        if url.startswith(API_PREFIX):
            continue
        data = {"csrf_token": token} if token else {}
        response = client.open(url, method=method, data=data)
        body = response.get_data(as_text=True)
        if response.status_code != 400 or "CSRF" not in body:
            wrong.append((endpoint, method, response.status_code))
    return wrong


def test_the_walk_sees_form_routes_and_reports_an_exempted_one():
    toy = Flask(__name__)
    toy.config.update(SECRET_KEY="x", WTF_CSRF_ENABLED=True)
    csrf = CSRFProtect(toy)

    @toy.post("/guarded")
    def guarded():
        return "changed"

    @toy.post("/forgotten")
    @csrf.exempt
    def forgotten():
        return "changed"

    assert requests_answered_without_token(toy, toy.test_client()) == [
        ("forgotten", "POST", 200)]


def test_there_are_many_form_routes(app):
    forms = [r for r in state_changing_requests(app) if not r[2].startswith(API_PREFIX)]
    assert len(forms) >= 35  # the walk is not silently empty (38 when written)


def test_every_form_route_refuses_a_request_without_token(app, client, login_as):
    assert requests_answered_without_token(app, client) == []
    login_as("admin")
    assert requests_answered_without_token(app, client) == []


def test_every_form_route_refuses_a_forged_or_foreign_token(app, client, login_as):
    other = app.test_client()
    foreign = csrf_token_from(other.get("/auth/login").get_data(as_text=True))
    login_as("supervisor")
    assert requests_answered_without_token(app, client, token="forged") == []
    assert requests_answered_without_token(app, client, token=foreign) == []


def test_the_page_token_is_accepted_in_the_form_and_the_htmx_header(client, login_as):
    """Positive control: the same requests with the session's token get through."""
    login_as("agent")
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert client.post("/notifications/read-all", data={"csrf_token": token}).status_code < 400
    response = client.post("/notifications/read-all",
                           headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code < 400


def test_exempt_routes_are_only_the_token_or_signature_authenticated_api(app, client):
    """Everything under /api/ that changes state declares an API scope or is a signed webhook,
    and refuses a request that carries neither (no cookie-authenticated route is exempt)."""
    api = [r for r in state_changing_requests(app) if r[2].startswith(API_PREFIX)]
    assert api
    for endpoint, method, url in api:
        kind, _ = route_protection(app.view_functions[endpoint])
        assert kind in {"api", "public"}, endpoint
        if kind == "public":
            assert endpoint.startswith("webhooks."), endpoint  # HMAC-signed
        response = client.open(url, method=method, json={},
                               headers={"Accept": "application/json"})
        assert response.status_code in {400, 401}, (endpoint, response.status_code)
        assert response.is_json, endpoint
