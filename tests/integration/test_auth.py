"""Login, logout, lockout, CSRF and the HTMX session-expiry answer."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.auth.login_protection import failures_key, lock_key
from portal.models import AuditLog
from tests.factories import DEFAULT_PASSWORD


def post_login(client, csrf_token, username, password, **extra):
    data = {"username": username, "password": password, "csrf_token": csrf_token()}
    data.update(extra)
    return client.post("/auth/login", data=data)


def test_login_page_renders_form_with_csrf_meta(client):
    response = client.get("/auth/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<meta name="csrf-token" content="' in html
    assert 'name="username"' in html and 'name="password"' in html
    assert "htmx.min.js" in html and "cdn" not in html.lower()


def test_login_success_sets_permanent_session_and_redirects_home(client, csrf_token, make_user):
    user = make_user(role="agent")
    response = post_login(client, csrf_token, user.username, DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie  # session.permanent
    with client.session_transaction() as session:
        assert session["_user_id"] == str(user.id)
    home = client.get("/")
    assert home.status_code == 200
    assert user.full_name in home.get_data(as_text=True)


def test_login_is_case_insensitive_on_username_and_follows_safe_next(
        client, csrf_token, make_user):
    user = make_user(role="admin")
    response = post_login(client, csrf_token, user.username.upper(), DEFAULT_PASSWORD,
                          next="/admin/tokens")
    assert response.headers["Location"] == "/admin/tokens"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_login_ignores_offsite_next(client, csrf_token, make_user, target):
    user = make_user()
    response = post_login(client, csrf_token, user.username, DEFAULT_PASSWORD, next=target)
    assert response.headers["Location"] == "/"


def test_wrong_password_shows_error_and_does_not_log_in(client, csrf_token, make_user):
    user = make_user()
    response = post_login(client, csrf_token, user.username, "wrong-password")
    assert response.status_code == 401
    assert "Invalid username or password." in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_unknown_user_gets_the_same_message(client, csrf_token, db):
    response = post_login(client, csrf_token, "nobody", "whatever-password")
    assert response.status_code == 401
    assert "Invalid username or password." in response.get_data(as_text=True)


def test_deactivated_user_cannot_log_in(client, csrf_token, make_user):
    user = make_user(active=False)
    response = post_login(client, csrf_token, user.username, DEFAULT_PASSWORD)
    assert response.status_code == 401
    assert "deactivated" in response.get_data(as_text=True)


def test_missing_fields_are_reported_next_to_each_field(client, csrf_token, db):
    response = post_login(client, csrf_token, "", "")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="username-error">Enter your username.' in html
    assert 'id="password-error">Enter your password.' in html


def test_post_without_csrf_token_is_refused_with_clear_message(client, make_user):
    user = make_user()
    response = client.post("/auth/login",
                           data={"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_post_without_csrf_token_as_json_client_gets_json(client, db):
    response = client.post("/auth/login", data={"username": "x", "password": "y"},
                           headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.get_json() == {
        "error": {"code": "csrf_failed", "message": "The CSRF token is missing."}
    }


def test_sixth_attempt_is_locked_even_with_right_password(client, csrf_token, make_user, app,
                                                          redis_client):
    user = make_user()
    assert app.config["LOGIN_MAX_FAILURES"] == 5
    for attempt in range(5):
        response = post_login(client, csrf_token, user.username, f"wrong-{attempt}")
        assert response.status_code == 401, attempt
        assert "Invalid username or password." in response.get_data(as_text=True)
    response = post_login(client, csrf_token, user.username, DEFAULT_PASSWORD)
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Account locked, try again in 15 minutes." in html
    with client.session_transaction() as session:
        assert "_user_id" not in session
    ttl = redis_client.ttl(lock_key(user.username))
    assert 0 < ttl <= app.config["LOGIN_LOCKOUT_SECONDS"]
    audit = db_rows(AuditLog, action="auth.lockout")
    assert [(a.entity_type, a.entity_id, a.after["failures"]) for a in audit] == [
        ("user", str(user.id), 5)
    ]


def db_rows(model, **filters):
    from portal.extensions import db

    return db.session.scalars(select(model).filter_by(**filters)).all()


def test_success_resets_the_failure_count(client, csrf_token, make_user, redis_client):
    user = make_user()
    for attempt in range(4):
        post_login(client, csrf_token, user.username, f"wrong-{attempt}")
    assert int(redis_client.get(failures_key(user.username))) == 4
    assert post_login(client, csrf_token, user.username, DEFAULT_PASSWORD).status_code == 302
    assert redis_client.get(failures_key(user.username)) is None
    client.post("/auth/logout", data={"csrf_token": csrf_token()})
    # four more failures do not lock: the count started again from zero
    for attempt in range(4):
        response = post_login(client, csrf_token, user.username, f"again-{attempt}")
        assert response.status_code == 401
    assert post_login(client, csrf_token, user.username, DEFAULT_PASSWORD).status_code == 302


def test_lockout_is_per_username(client, csrf_token, make_user):
    victim, other = make_user(), make_user()
    for attempt in range(5):
        post_login(client, csrf_token, victim.username, f"wrong-{attempt}")
    assert post_login(client, csrf_token, other.username, DEFAULT_PASSWORD).status_code == 302


def test_login_rate_limit_answers_429(app, client, csrf_token, db, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per minute")
    statuses = [post_login(client, csrf_token, f"user{i}", "pw").status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_logout_clears_session_and_requires_post(client, csrf_token, login_as):
    login_as("agent")
    confirm = client.get("/auth/logout")  # a GET only asks (issue 19: /logout is typed)
    assert confirm.status_code == 200 and 'action="/auth/logout"' in confirm.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "_user_id" in session
    response = client.post("/auth/logout", data={"csrf_token": csrf_token("/")})
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    with client.session_transaction() as session:
        assert "_user_id" not in session
    assert client.get("/").status_code == 302


def test_logout_without_csrf_is_refused(client, login_as):
    login_as("agent")
    response = client.post("/auth/logout")
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "_user_id" in session


def test_anonymous_page_redirects_to_login_with_next(client, db):
    response = client.get("/admin/tokens")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/admin/tokens"


def test_htmx_request_with_expired_session_gets_hx_redirect_not_302(client, db):
    response = client.get("/admin/tokens", headers={
        "HX-Request": "true", "HX-Current-URL": "http://localhost/admin/users?page=2",
    })
    assert response.status_code == 204
    assert "Location" not in response.headers
    assert response.headers["HX-Redirect"] == (
        "/auth/login?next=/admin/users?page%3D2&expired=1"
    )


def test_htmx_post_with_expired_session_gets_hx_redirect_not_csrf_error(client, db):
    # the session (and the CSRF token in it) is gone: log in again rather than "CSRF missing"
    response = client.post("/admin/tokens/1/revoke", headers={
        "HX-Request": "true", "X-CSRFToken": "stale-token",
        "HX-Current-URL": "http://localhost/admin/tokens",
    })
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/auth/login?next=/admin/tokens")


def test_login_page_explains_an_expired_session(client, db):
    html = client.get("/auth/login?expired=1").get_data(as_text=True)
    assert "Your session has expired" in html


def test_redis_down_login_still_works(app, client, csrf_token, make_user, monkeypatch, caplog):
    """Fail open: with the lockout store unreachable, the right password still logs in, the wrong
    one is still refused, and the outage is logged."""
    from redis import Redis

    user = make_user()
    token = csrf_token()
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, "portal_redis", unreachable)
    with caplog.at_level("WARNING", logger="portal.auth.login_protection"):
        wrong = client.post("/auth/login", data={
            "username": user.username, "password": "nope", "csrf_token": token})
        right = client.post("/auth/login", data={
            "username": user.username, "password": DEFAULT_PASSWORD, "csrf_token": token})
    assert wrong.status_code == 401
    assert right.status_code == 302
    assert "Redis unavailable" in caplog.text


def test_error_pages_use_the_layout(app, client, login_as):
    anonymous = client.get("/no-such-page")
    assert anonymous.status_code == 404
    html = anonymous.get_data(as_text=True)
    assert "Page not found" in html and '<meta name="csrf-token"' in html
    login_as("agent")
    html = client.get("/no-such-page").get_data(as_text=True)
    assert "Page not found" in html and 'aria-label="Main"' in html  # inside the app shell
    forbidden = client.get("/admin/users")
    assert forbidden.status_code == 403
    assert "Access denied" in forbidden.get_data(as_text=True)
    assert "admin.users" in forbidden.headers["X-Error-Message"]


def test_server_error_page(app, db):
    from portal.web import render_error

    with app.test_request_context("/"):
        response = render_error(500, "An unexpected error occurred.")
    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)


def test_htmx_partial_request_gets_content_without_layout(client, login_as):
    login_as("admin")
    partial = client.get("/admin/users", headers={"HX-Request": "true"})
    boosted = client.get("/admin/users", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" not in partial.get_data(as_text=True)
    assert 'data-testid="users"' in partial.get_data(as_text=True)
    assert "<html" in boosted.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"]
    assert partial.headers["Cache-Control"] == "no-store"


def test_health_is_public(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
