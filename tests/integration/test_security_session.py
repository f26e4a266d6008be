"""Sessions: nothing of the pre-login session survives the login (no fixation), the cookie flags,
logout clears the session and revokes it, so a copy of the signed-in cookie is worthless
(docs/security.md, "Sessions and cookies")."""

from __future__ import annotations

from portal import create_app
from portal.config import Config
from tests.conftest import csrf_token_from
from tests.factories import DEFAULT_PASSWORD

COOKIE = "session"


def session_cookie(client) -> str | None:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else None


def set_cookie_header(response) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE}=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return headers[0]


def log_in(client, user) -> tuple[str, object]:
    token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
    response = client.post("/auth/login", data={
        "username": user.username, "password": DEFAULT_PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return token, response


def test_login_replaces_the_pre_login_session(app, client, make_user):
    user = make_user(role="agent")
    # the attacker's (or any) anonymous session, planted before the victim signs in
    pre_token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
    with client.session_transaction() as session:
        session["planted"] = "attacker-chosen"
    pre_login_cookie = session_cookie(client)
    assert pre_login_cookie

    _, response = log_in(client, user)
    assert "Expires=" in set_cookie_header(response)
    post_login_cookie = session_cookie(client)
    assert post_login_cookie != pre_login_cookie
    with client.session_transaction() as session:
        assert session["_user_id"] == str(user.id)
        assert len(session["sid"]) >= 20  # a random id of its own
        assert "planted" not in session
        assert session.get("csrf_token") is None  # a new token is made on the next page

    # the CSRF token of the anonymous session no longer works
    refused = client.post("/auth/logout", data={"csrf_token": pre_token})
    assert refused.status_code == 400
    with client.session_transaction() as session:
        assert session["_user_id"] == str(user.id)  # refused: the logout did not happen

    # whoever still holds the pre-login cookie is not signed in
    other = app.test_client()
    other.set_cookie(COOKIE, pre_login_cookie)
    assert other.get("/").status_code == 302
    assert other.get("/").headers["Location"].startswith("/auth/login")
    with other.session_transaction() as session:
        assert "_user_id" not in session


def test_two_logins_give_two_different_session_cookies(client, make_user):
    user = make_user(role="agent")
    log_in(client, user)
    first = session_cookie(client)
    with client.session_transaction() as session:
        first_id = session["sid"]
    client.delete_cookie(COOKIE)
    log_in(client, user)  # same user, same second, same browser
    assert session_cookie(client) != first
    with client.session_transaction() as session:
        assert session["sid"] != first_id


def test_session_cookie_flags_in_testing(client, make_user):
    _, response = log_in(client, make_user())
    cookie = set_cookie_header(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # tests run over plain http


def test_production_config_marks_the_cookie_secure(app):
    production = create_app(Config, {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        # the limiter is one object: keep its storage the flushed test Redis
        "RATELIMIT_STORAGE_URI": app.config["RATELIMIT_STORAGE_URI"],
    })
    assert production.config["SESSION_COOKIE_SECURE"] is True
    assert production.config["REMEMBER_COOKIE_SECURE"] is True
    response = production.test_client().get("/auth/login", base_url="https://crm.bank.example")
    cookie = set_cookie_header(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_logout_clears_the_session(client, make_user):
    log_in(client, make_user(role="supervisor"))
    page = client.get("/")
    assert page.status_code == 200
    token = csrf_token_from(page.get_data(as_text=True))
    response = client.post("/auth/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    with client.session_transaction() as session:
        assert set(session.keys()) <= {"_flashes"}
    assert client.get("/").status_code == 302
    # the old CSRF token went with the session
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 400


def test_logout_needs_a_post_with_the_token(client, make_user):
    log_in(client, make_user())
    assert client.get("/auth/logout").status_code == 200  # a page that asks, nothing more
    assert client.post("/auth/logout").status_code == 400
    assert client.get("/").status_code == 200  # still signed in


def test_a_copy_of_the_cookie_taken_before_logout_no_longer_signs_in(app, client, make_user):
    log_in(client, make_user(role="supervisor"))
    page = client.get("/")
    assert page.status_code == 200
    stolen = session_cookie(client)
    other = app.test_client()  # the copy, in another browser
    other.set_cookie(COOKIE, stolen)
    assert other.get("/").status_code == 200
    token = csrf_token_from(page.get_data(as_text=True))
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    response = other.get("/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert other.get("/api/v1/customers").status_code == 401


def test_logging_in_again_after_a_logout_works(client, make_user):
    user = make_user()
    log_in(client, user)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    client.post("/auth/logout", data={"csrf_token": token})
    log_in(client, user)
    assert client.get("/").status_code == 200
