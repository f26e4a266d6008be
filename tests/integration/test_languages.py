"""The portal speaks Vietnamese first, and each user picks a language (issue 21 §1, §2).

The deployment's default (``DEFAULT_LANGUAGE``, "vi" in production; the test configuration
reads English unless a test chooses) greets a visitor on the sign-in page; the language menu
there keeps the visitor's choice in the session, and a signed-in user's choice is kept on the
user (audited), so it follows them to any browser. Numbers, money and dates follow the page's
language."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.models import AuditLog


@pytest.fixture
def vietnamese_default(app):
    app.config["DEFAULT_LANGUAGE"] = "vi"
    yield
    app.config["DEFAULT_LANGUAGE"] = "en"


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def choose(client, csrf_token, language: str, next_path: str = "/"):
    return client.post("/auth/language", data={"language": language, "next": next_path,
                                               "csrf_token": csrf_token()})


def test_a_visitor_is_greeted_in_the_deployments_language(client, vietnamese_default):
    html = text_of(client.get("/auth/login"))
    assert '<html lang="vi">' in html
    assert "<h1>Đăng nhập</h1>" in html and "Tên đăng nhập" in html
    assert "Sign in" not in html


def test_the_sign_in_page_menu_switches_the_visitors_language(client, csrf_token,
                                                             vietnamese_default):
    response = choose(client, csrf_token, "en", "/cases/queue")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/cases/queue"
    html = text_of(client.get("/auth/login"))
    assert '<html lang="en">' in html and "<h1>Sign in</h1>" in html


def test_a_users_choice_is_kept_on_the_user_and_audited(client, csrf_token, login, make_user,
                                                       db, vietnamese_default):
    user = login(make_user("agent"))
    assert 'lang="vi"' in text_of(client.get("/"))
    choose(client, csrf_token, "en")
    db.session.expire_all()
    assert user.language == "en"
    audit = db.session.scalars(select(AuditLog).where(
        AuditLog.action == "user.language_changed")).one()
    assert (audit.actor_id, audit.before, audit.after) == (user.id, {"language": None},
                                                          {"language": "en"})
    # a new session (another browser) reads the user's language, not the session's
    other = client.application.test_client()
    with other.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
    html = text_of(other.get("/"))
    assert '<html lang="en">' in html and "Work queue" in html


def test_an_unknown_language_changes_nothing(client, csrf_token, login, make_user, db):
    user = login(make_user("agent"))
    choose(client, csrf_token, "fr")
    db.session.expire_all()
    assert user.language is None
    assert '<html lang="en">' in text_of(client.get("/"))


def test_money_dates_and_times_follow_the_page_language(app, db, frozen_now):
    from portal.i18n import format_ago, format_datetime, format_number
    from portal.money import format_money

    at = datetime.fromisoformat("2026-12-06T15:04:00+07:00")  # a Sunday afternoon in Hà Nội
    frozen_now("2026-12-06T15:09:00+07:00")
    for language, money, when, ago in (
            ("vi", "1.234.567\u00a0₫", "Chủ Nhật 06/12/2026 15:04", "5 phút trước"),
            ("en", "1,234,567\u00a0₫", "Sunday 06/12/2026 15:04", "5 minutes ago")):
        app.config["DEFAULT_LANGUAGE"] = language
        try:
            with app.test_request_context():
                assert format_money(Decimal("1234567")) == money
                assert format_datetime(at, "%A %d/%m/%Y %H:%M") == when
                assert format_ago(at) == ago
                assert format_number(1234567) == money.split("\u00a0")[0]
        finally:
            app.config["DEFAULT_LANGUAGE"] = "en"


def test_a_label_of_a_constant_code_follows_each_readers_language(app):
    # Jinja would fold {{ "closed"|label }} into the compiled template in the first reader's
    # language; the portal's filters are evaluated at each render instead
    template = app.jinja_env.from_string('{{ "closed"|label }} {{ 1234567|number }}')
    seen = {}
    for language in ("en", "vi", "en"):
        app.config["DEFAULT_LANGUAGE"] = language
        try:
            with app.test_request_context():
                seen.setdefault(language, set()).add(template.render())
        finally:
            app.config["DEFAULT_LANGUAGE"] = "en"
    assert seen == {"en": {"Closed 1,234,567"}, "vi": {"Đã đóng 1.234.567"}}
