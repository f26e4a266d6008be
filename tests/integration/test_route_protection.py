"""Walk every URL rule of the app and prove it is protected as it declares, with expectations
derived from portal.permissions (not a hand-written list):

- every rule is public or declares a permission (page) or scope (API);
- anonymous: pages redirect to the login page, API rules answer 401 JSON;
- each role lacking the permission gets 403 (JSON for the API);
- each role holding it gets through (GET rules; not 401/403, not sent to login).
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from werkzeug.routing import IntegerConverter, UUIDConverter

from portal.models.enums import ROLES
from portal.permissions.decorators import permission_required, public, route_protection
from portal.permissions.roles import ROLE_PERMISSIONS
from tests.conftest import csrf_token_from

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def sample_value(rule, name):
    converter = rule._converters[name]
    if isinstance(converter, IntegerConverter):
        return 987654
    if isinstance(converter, UUIDConverter):
        return uuid.UUID(int=1)
    return "sample"


def requests_for(app):
    """(endpoint, method, url, kind, permission) for every rule and method of the app."""
    out = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        kind, permission = route_protection(view)
        values = {name: sample_value(rule, name) for name in rule.arguments}
        for method in sorted(rule.methods - IGNORED_METHODS):
            url = adapter.build(rule.endpoint, values, method=method)
            out.append((rule.endpoint, method, url, kind, permission))
    return out


def unprotected(app):
    return sorted({e for e, _, _, kind, _ in requests_for(app) if kind == "none"})


def test_walk_finds_an_unprotected_route():
    """The walk itself can fail: a route without a declaration is reported."""
    app = Flask(__name__)

    @app.get("/guarded")
    @permission_required("cases.view")
    def guarded():
        return "ok"

    @app.get("/open")
    @public
    def open_route():
        return "ok"

    @app.get("/forgotten")
    def forgotten():
        return "ok"

    assert unprotected(app) == ["forgotten", "static"]


def test_every_route_declares_its_protection(app):
    assert unprotected(app) == []


def test_the_walk_covers_the_core_routes(app):
    found = {(e, m): k for e, m, _, k, _ in requests_for(app)}
    assert found[("auth.login", "GET")] == "public"
    assert found[("static", "GET")] == "public"
    assert found[("main.home", "GET")] == "page"
    assert found[("auth.logout", "POST")] == "page"
    assert found[("admin.tokens", "GET")] == "page"
    assert found[("admin.revoke_token", "POST")] == "page"
    assert found[("api.me", "GET")] == "api"


def _call(client, method, url, token, **headers):
    kwargs = {"headers": dict(headers)}
    if method not in ("GET", "HEAD"):
        kwargs["headers"]["X-CSRFToken"] = token
    return client.open(url, method=method, **kwargs)


@pytest.fixture
def anonymous_token(client):
    return csrf_token_from(client.get("/auth/login").get_data(as_text=True))


def test_anonymous_is_refused_everywhere(app, client, anonymous_token):
    failures = []
    for endpoint, method, url, kind, _ in requests_for(app):
        if kind == "public":
            continue
        response = _call(client, method, url, anonymous_token)
        if kind == "api":
            ok = response.status_code == 401 and response.is_json and \
                response.get_json()["error"]["code"]
        else:
            ok = response.status_code == 302 and \
                response.headers["Location"].startswith("/auth/login")
        if not ok:
            failures.append((endpoint, method, url, response.status_code))
    assert failures == []


def test_anonymous_htmx_requests_get_hx_redirect(app, client, anonymous_token):
    failures = []
    for endpoint, method, url, kind, _ in requests_for(app):
        if kind != "page":
            continue
        response = _call(client, method, url, anonymous_token, **{"HX-Request": "true"})
        if response.status_code != 204 or not response.headers.get(
                "HX-Redirect", "").startswith("/auth/login"):
            failures.append((endpoint, method, response.status_code))
    assert failures == []


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_refused_where_its_permissions_do_not_reach(app, make_user, role):
    user = make_user(role=role)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
    token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
    granted = ROLE_PERMISSIONS[role]
    refused, wrongly_refused, checked = [], [], 0
    for endpoint, method, url, kind, permission in requests_for(app):
        if kind == "public":
            continue
        if permission in granted:
            if method != "GET":
                continue  # no side effects: allowed POSTs are exercised by their own tests
            response = _call(client, method, url, token)
            sent_to_login = response.status_code == 302 and \
                response.headers.get("Location", "").startswith("/auth/login")
            if response.status_code in (401, 403) or sent_to_login:
                wrongly_refused.append((endpoint, method, response.status_code))
            continue
        checked += 1
        response = _call(client, method, url, token)
        if kind == "api":
            ok = response.status_code == 403 and response.get_json()["error"]["code"]
        else:
            ok = response.status_code == 403
        if not ok:
            refused.append((endpoint, method, url, response.status_code))
    assert refused == [], f"{role} was not refused (403) on these"
    assert wrongly_refused == [], f"{role} was refused where its permissions reach"
    if role != "admin":
        assert checked > 0  # every role but admin is kept out of the admin pages at least
