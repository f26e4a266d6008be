"""Issue 19, finding 21: a person who types /login (or /logout) reaches the sign-in (sign-out)
page instead of a 404; ``next`` is kept, and only when it is a path on this site."""

from __future__ import annotations

from tests.conftest import csrf_token_from


def test_slash_login_redirects_to_the_login_page_keeping_next(client):
    response = client.get("/login?next=/cases/?bucket=B2")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/cases/?bucket%3DB2"

    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Sign in" in html
    assert 'value="/cases/?bucket=B2"' in html  # the form posts it back


def test_slash_login_without_next_and_with_an_offsite_next(client):
    assert client.get("/login").headers["Location"] == "/auth/login"
    assert client.get("/login?next=https://evil.example/").headers["Location"] == "/auth/login"
    assert client.get("/login/").status_code in (302, 308)  # the trailing slash, too


def test_slash_logout_leads_to_sign_out_and_signs_out_only_on_post(client, login, make_user):
    user = login(make_user(role="agent"))
    response = client.get("/logout")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/logout"

    confirm = client.get("/auth/logout")  # typing an address never signs anyone out by itself
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert "Sign out" in html and user.full_name in html
    assert client.get("/").status_code == 200  # still signed in

    token = csrf_token_from(html)
    moved = client.post("/logout", data={"csrf_token": token})  # a form posting to /logout
    assert moved.status_code == 307 and moved.headers["Location"] == "/auth/logout"
    signed_out = client.post("/auth/logout", data={"csrf_token": token})
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"] == "/auth/login"
    assert client.get("/").status_code == 302  # signed out


def test_slash_logout_when_signed_out_leads_to_the_login_page(client):
    response = client.get("/logout", follow_redirects=True)
    assert response.status_code == 200
    assert response.request.path == "/auth/login"
    assert "Sign in" in response.get_data(as_text=True)
