"""Each role's home page shows its own work, read from the database."""

from __future__ import annotations

import re

import pytest

from tests.e2e.home_data import seed_home_data


@pytest.fixture
def home(db, make_user, make_team, make_customer, make_loan):
    return seed_home_data(db, make_user, make_team, make_customer, make_loan)


def page_of(client, login, user):
    login(user)
    response = client.get("/")
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def stat(html, testid):
    match = re.search(rf'data-testid="{testid}">.*?class="stat-value[^"]*">([^<]+)<', html)
    return match.group(1).strip()


def test_agent_home(client, login, home):
    html = page_of(client, login, home.agent)
    assert stat(html, "stat-open-cases") == "7"  # 10 customers, every third to the other agent
    assert stat(html, "stat-promises-today") == "3"
    assert "Tran Thi Mai" in html and "3,000,000 ₫" in html  # promise due today, in VND
    assert "Customer will pay on Friday" in html  # recent action
    assert "90+ DPD" in html
    assert 'href="/admin/tokens"' not in html  # navigation shows only what the role may use


def test_field_agent_home(client, login, home):
    html = page_of(client, login, home.field_agent)
    assert stat(html, "stat-visits-today") == "5"
    assert stat(html, "stat-field-cases") == "6"  # dpd >= 45
    assert "Pham Thi Hoa" in html and "Checked in" in html and "District" in html


def test_supervisor_home(client, login, home):
    html = page_of(client, login, home.supervisor)
    assert stat(html, "stat-teams") == "1"
    assert stat(html, "stat-team-cases") == "10"  # distinct: 6 of them also have a field agent
    assert "10 phone · 6 field cases" in html
    assert "HCMC Team 1" in html and "Le Thi Binh" in html and "On a call" in html


def test_ops_home(client, login, home):
    html = page_of(client, login, home.ops)
    assert stat(html, "stat-unrelayed") == "2"
    assert stat(html, "stat-dead") == "1"
    assert "No runs yet" in html  # LOS, CTI, GPS, EVENTS have none
    assert "Paused" in html and "Not configured" in html and "Failed" in html


def test_admin_home(client, login, home):
    html = page_of(client, login, home.admin)
    assert stat(html, "stat-active-users") == "6"
    assert stat(html, "stat-active-tokens") == "2"
    assert "Call centre CTI" in html and "Old CTI token" not in html
    assert 'href="/admin/tokens"' in html and 'href="/admin/users"' in html


def test_empty_database_pages_render_honest_empty_states(client, login_as, db):
    login_as("ops")
    html = client.get("/").get_data(as_text=True)
    assert html.count("No runs yet") == 8  # the 7 integrations and the strategies' run
    login_as("agent")
    html = client.get("/").get_data(as_text=True)
    assert "No promises fall due today" in html and "No actions recorded yet" in html


def test_vnd_filter_follows_the_readers_language(app):
    from portal.web import format_vnd

    with app.test_request_context():  # the test deployment's default: English
        assert format_vnd(12500000) == "12,500,000\u00a0₫"
        assert format_vnd("0") == "0\u00a0₫"
        assert format_vnd(None) == "—"
    with app.test_request_context(), app.app_context():
        app.config["DEFAULT_LANGUAGE"] = "vi"
        try:
            assert format_vnd(12500000) == "12.500.000\u00a0₫"
        finally:
            app.config["DEFAULT_LANGUAGE"] = "en"
