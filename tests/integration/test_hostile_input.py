"""Hostile input through the browser-facing forms (docs/security.md, "Hostile input"):

- XSS and SQL-injection strings in every search box and GET filter of every page (found by
  reading each page's GET forms, per role), and in the free-text fields that are stored and
  shown again (action notes, contacts, action codes, API token names, discrepancy resolution,
  ops pause reason, assignment CSV): the pages that show them render them escaped, and the
  SQL strings get an ordinary answer (no 500; nothing changed beyond the intended field).
- Oversized bodies: 413 (JSON under /api/), and the largest legitimate form still fits.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from portal.models import Action, ActionCode, ApiToken, Case, Customer, Phone, Promise, User
from portal.models.enums import ROLES
from tests.conftest import csrf_token_from

XSS = """<script>alert("xss")</script><img src=x onerror=alert(1)>"'><svg onload=alert(2)>"""
SQLI = "' OR '1'='1'; DROP TABLE cases; --"
HOSTILE = f"{XSS} {SQLI}"
SHORT = "<script>alert(1)</script><img src=x onerror=alert(1)>' OR 1=1--"  # 100-char fields
GET_PAYLOADS = (HOSTILE, "%' UNION SELECT password_hash, username FROM users --",
                "1; SELECT pg_sleep(5)")

# what a rendered payload must never contain: a live tag or handler of our own strings
RAW = re.compile(r"<script>alert|<img src=x onerror|<svg onload|onerror=alert\(1\)>", re.I)
SHOWN = "&lt;script&gt;alert("


def assert_escaped(html: str, where: str = "") -> None:
    match = RAW.search(html)
    if match:
        context = html[max(0, match.start() - 80):match.end() + 40]
        raise AssertionError(f"{where}: raw payload at {context!r}")


def assert_shown_escaped(html: str, where: str = "") -> None:
    assert_escaped(html, where)
    assert SHOWN in html, f"{where}: the stored payload is not shown"


def test_the_checks_see_a_raw_payload():
    for raw in (XSS, SHORT, '<p><img src=x onerror=alert(1)></p>'):
        with pytest.raises(AssertionError):
            assert_escaped(raw)
    escaped = str(escape(HOSTILE))
    assert_shown_escaped(escaped)


# --- search boxes and GET filters -------------------------------------------------------------


class QueryParameters(HTMLParser):
    """The parameters a page reads from its URL: the fields of its ``<form method="get">``
    and the query parameters of its links back to itself."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.names: set[str] = set()
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "?" in (attrs.get("href") or ""):
            target, _, query = attrs["href"].partition("?")
            if target == self.path:
                self.names.update(name for name, _ in parse_qsl(query, keep_blank_values=True))
        elif tag == "form":
            self._depth += (attrs.get("method") or "get").lower() == "get"
        elif self._depth and tag in {"input", "select", "textarea"} and \
                attrs.get("name") not in {None, "csrf_token"}:
            self.names.add(attrs["name"])

    def handle_endtag(self, tag):
        if tag == "form" and self._depth:
            self._depth -= 1


def get_pages(app) -> list[str]:
    """Every HTML page without URL arguments (not the API, static files or JSON probes)."""
    out = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments:
            continue
        if rule.rule.startswith(("/api/", "/static", "/health", "/readyz", "/metrics")) or \
                rule.rule.endswith((".csv", "/data", "/unread-count", "/cards", "/status")):
            continue
        out.append(rule.rule)
    return sorted(out)


@pytest.fixture
def portfolio(db, make_user, make_team, ws_case):
    team = make_team()
    users = {role: make_user(role=role, team=team) for role in ROLES}
    for dpd in (5, 45, 95):
        ws_case(users["agent"], dpd=dpd)
    return users


def test_every_search_box_and_filter_escapes_and_survives_hostile_strings(
        app, client, login, portfolio, db):
    counts_before = {model: db.session.scalar(select(func.count()).select_from(model))
                     for model in (Case, Customer, User)}
    probed = set()
    for role, user in portfolio.items():
        login(user)
        for page in get_pages(app):
            response = client.get(page)
            if response.status_code != 200 or response.mimetype != "text/html":
                continue  # not this role's page
            parser = QueryParameters(page)
            parser.feed(response.get_data(as_text=True))
            for name in sorted(parser.names | {"q", "next", "page"}):
                if (page, name) in probed:
                    continue  # met as another role
                for payload in GET_PAYLOADS:
                    answer = client.get(page, query_string={name: payload})
                    where = f"{role} {page}?{name}="
                    assert answer.status_code < 500, where
                    assert_escaped(answer.get_data(as_text=True), where)
                probed.add((page, name))
    # the walk really met the search boxes and filters
    pages = {page for page, _ in probed}
    assert {"/cases/search", "/cases/", "/calls/", "/supervisor/kpi/", "/ops/integrations/runs",
            "/payments/reconciliation", "/supervisor/assignment/"} <= pages, sorted(pages)
    assert {("/calls/", "day"), ("/cases/search", "q"), ("/payments/reconciliation", "kind"),
            ("/supervisor/board", "status")} <= probed, sorted(probed)
    assert len(probed) >= 50, sorted(probed)
    db.session.expire_all()
    assert counts_before == {model: db.session.scalar(select(func.count()).select_from(model))
                             for model in counts_before}


def test_search_reflects_the_query_escaped(client, login, portfolio):
    login(portfolio["agent"])
    html = client.get("/cases/search", query_string={"q": HOSTILE}).get_data(as_text=True)
    assert_escaped(html)
    assert "&lt;script&gt;" in html  # the query is shown back, escaped


# --- stored free text ------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 10:00 in the bank's zone: calls allowed


def htmx_post(client, url, token, target, **data):
    return client.post(url, data=data, headers={"X-CSRFToken": token, "HX-Request": "true",
                                                "HX-Target": target})


def test_case_notes_contacts_and_promises(client, db, login, make_user, ws_case, make_phone,
                                          ws_action_codes, frozen_now):
    frozen_now(NOW)
    agent = login(make_user("agent", full_name=XSS))
    case = ws_case(agent, dpd=20, overdue="6000000")
    phone = make_phone(case.cif, "0912345678")
    token = csrf_token_from(client.get(f"/cases/{case.cif}").get_data(as_text=True))
    ptp = ws_action_codes[("CALL", "OUTBOUND", "PTP")]
    common = dict(type="CALL", subtype="OUTBOUND", action_code_id=ptp.id, phone_id=phone.id,
                  account_number=case.loan.account_number, follow_up_date="")

    # SQL in the amount and date of a promise: a field error, nothing stored
    for amount, when in ((SQLI, "2026-11-27"), ("1000000", SQLI), (HOSTILE, HOSTILE)):
        refused = htmx_post(client, f"/cases/{case.cif}/actions", token, "action-form",
                            promise_amount=amount, promise_date=when, notes="x", **common)
        assert refused.status_code == 422
        assert_escaped(refused.get_data(as_text=True), "promise form")
    assert db.session.scalar(select(func.count()).select_from(Action)) == 0
    assert db.session.scalar(select(func.count()).select_from(Promise)) == 0

    saved = htmx_post(client, f"/cases/{case.cif}/actions", token, "action-form",
                      promise_amount="3,000,000", promise_date="2026-11-27", notes=HOSTILE,
                      **common)
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert db.session.scalar(select(Action.notes)) == HOSTILE  # stored as typed

    for kind, data in (("phone", {"type": "MOBILE", "number": "0933 111 222", "notes": HOSTILE}),
                       ("address", {"type": "HOME", "line1": HOSTILE, "district": SQLI,
                                    "city": XSS}),
                       ("email", {"type": "PERSONAL", "address": HOSTILE})):
        answer = htmx_post(client, f"/cases/{case.cif}/contacts/{kind}", token,
                           "panel-contacts", **data)
        assert answer.status_code in {200, 422}, kind
        assert_escaped(answer.get_data(as_text=True), kind)
    assert db.session.scalar(select(func.count()).select_from(Phone)) == 2

    # a call logged by hand (call centre down): SQL in the time and length, then hostile notes
    no_answer = ws_action_codes[("CALL", "OUTBOUND", "NO_ANSWER")]
    manual = dict(cif=case.cif, phone_id=phone.id, direction="outbound",
                  action_code_id=no_answer.id)
    refused = client.post("/calls/manual", headers={"X-CSRFToken": token}, data={
        **manual, "started_time": SQLI, "duration_minutes": SQLI, "notes": HOSTILE})
    assert refused.status_code == 422
    assert_escaped(refused.get_data(as_text=True), "manual call form")
    logged = client.post("/calls/manual", headers={"X-CSRFToken": token}, data={
        **manual, "duration_minutes": "2", "notes": HOSTILE})
    assert logged.status_code == 200, logged.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Action)) == 2

    for page in (f"/cases/{case.cif}", f"/cases/{case.cif}/panels/timeline",
                 f"/cases/{case.cif}/panels/history", f"/cases/{case.cif}/panels/contacts",
                 f"/cases/{case.cif}/panels/promises", "/cases/", "/", "/calls/"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert_escaped(response.get_data(as_text=True), page)
    assert SHOWN in client.get(f"/cases/{case.cif}/panels/timeline").get_data(as_text=True)
    contacts = client.get(f"/cases/{case.cif}/panels/contacts").get_data(as_text=True)
    assert_shown_escaped(contacts, "contacts")
    db.session.expire_all()
    assert db.session.get(Case, case.id).status == "promised"  # the intended change only


def test_admin_action_code_label_and_token_name(client, db, login, make_user):
    admin = login(make_user("admin"))
    token = csrf_token_from(client.get("/admin/action-codes").get_data(as_text=True))
    created = client.post("/admin/action-codes", data={
        "csrf_token": token, "type": "CALL", "subtype": "OUTBOUND", "result": "HOSTILE",
        "label": HOSTILE, "follow_up_days": "1", "sort_order": "1", "active": "y"})
    assert created.status_code == 302, created.get_data(as_text=True)
    assert db.session.scalar(select(ActionCode.label)) == HOSTILE
    sqli = client.post("/admin/action-codes", data={
        "csrf_token": token, "type": "CALL", "subtype": SQLI, "result": SQLI, "label": SQLI,
        "follow_up_days": SQLI, "sort_order": SQLI})
    assert sqli.status_code == 422
    assert_escaped(sqli.get_data(as_text=True), "action code form")

    tokens = client.post("/admin/tokens", data={
        "csrf_token": token, "name": SHORT, "user_id": str(admin.id),
        "scopes": ["api.profile"], "expires_in_days": "30"})
    assert tokens.status_code in {200, 201, 302}, tokens.status_code
    assert_escaped(tokens.get_data(as_text=True), "token created")
    assert db.session.scalar(select(ApiToken.name)) == SHORT
    bad = client.post("/admin/tokens", data={"csrf_token": token, "name": "x",
                                             "user_id": SQLI, "expires_in_days": SQLI})
    assert bad.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 1

    code_id = db.session.scalar(select(ActionCode.id))
    for page in ("/admin/action-codes", f"/admin/action-codes/{code_id}", "/admin/tokens", "/"):
        assert_shown_escaped(client.get(page).get_data(as_text=True), page)


def test_discrepancy_resolution_and_ops_pause_reason(client, db, login, make_user):
    from portal.models import Discrepancy, ReconciliationRun

    login(make_user("ops", full_name=XSS))
    run = ReconciliationRun(integration="PAYMENTS", business_date=date(2026, 11, 23),
                            status="partial", started_at=NOW)
    db.session.add(run)
    db.session.flush()
    row = Discrepancy(run_id=run.id, kind="missing_in_crm", entity="payment", key=SHORT,
                      source_value={"reference": XSS}, crm_value=None)
    db.session.add(row)
    db.session.commit()
    token = csrf_token_from(client.get("/payments/reconciliation").get_data(as_text=True))
    done = client.post(f"/payments/discrepancies/{row.id}/resolve",
                       data={"csrf_token": token, "note": HOSTILE, "outcome": SQLI})
    assert done.status_code == 302
    resolved = client.post(f"/payments/discrepancies/{row.id}/resolve",
                           data={"csrf_token": token, "note": HOSTILE, "outcome": "resolved"})
    assert resolved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Discrepancy, row.id).resolution == HOSTILE
    page = client.get("/payments/reconciliation", query_string={"status": "resolved"})
    assert_shown_escaped(page.get_data(as_text=True), "reconciliation")

    paused = client.post("/ops/integrations/W4/pause", data={"csrf_token": token,
                                                              "reason": HOSTILE})
    assert paused.status_code in {302, 303}
    sqli_name = client.post(f"/ops/integrations/{SQLI}/pause", data={"csrf_token": token})
    assert sqli_name.status_code == 404
    for page in ("/ops/integrations", "/ops/integrations/cards", "/ops/alerts", "/"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert_escaped(response.get_data(as_text=True), page)
    client.post("/ops/integrations/W4/resume", data={"csrf_token": token})


def test_field_visit_notes_and_a_hostile_customer_name(client, db, login, make_user,
                                                      make_team, make_customer, make_loan):
    """A field agent plans a visit with hostile notes, on a customer whose name (from the
    bank's systems) is hostile too: the day page, the map data and the supervisor's pages show
    both escaped."""
    from decimal import Decimal

    from portal.models import Address, Visit

    team = make_team()
    agent = login(make_user("field_agent", team=team, full_name=XSS))
    customer = make_customer(name=HOSTILE)
    make_loan(customer, dpd=45)
    db.session.add(Address(cif=customer.cif, type="HOME", line1=XSS, district=SQLI,
                           city="Ho Chi Minh", lat=10.78, lon=106.70, is_primary=True,
                           source_system="T24"))
    db.session.add(Case(cif=customer.cif, assigned_field_agent_id=agent.id, status="open",
                        priority=50, max_dpd=45, total_overdue=Decimal("5000000")))
    db.session.commit()
    token = csrf_token_from(client.get("/field/visits").get_data(as_text=True))
    refused = client.post("/field/visits/plan", data={"csrf_token": token, "cif": SQLI})
    assert refused.status_code in {302, 404}
    planned = client.post("/field/visits/plan", data={"csrf_token": token, "cif": customer.cif,
                                                      "notes": HOSTILE})
    assert planned.status_code == 302
    assert db.session.scalar(select(Visit.notes)) == HOSTILE
    assert_shown_escaped(client.get("/field/visits").get_data(as_text=True), "my day")

    login(make_user("supervisor", team=team))
    for page in ("/field/map", "/field/reviews", f"/cases/{customer.cif}", "/cases/search?q=CIF"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert_escaped(response.get_data(as_text=True), page)
    # the map's data is JSON (the names as they are; field_map.js writes them as text, see
    # tests/e2e/test_csp.py), never sniffed as HTML
    data = client.get("/field/map/data", query_string={"customers": "1"})
    assert data.is_json and data.headers["X-Content-Type-Options"] == "nosniff"
    assert data.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_assignment_csv_with_hostile_cells(client, db, login, make_user, make_team, ws_case):
    team = make_team()
    login(make_user("supervisor", team=team))
    ws_case(make_user("agent", team=team))
    token = csrf_token_from(client.get("/supervisor/assignment/upload").get_data(as_text=True))
    content = f"cif,agent\n{XSS},{SQLI}\n{SQLI},{XSS}\n"
    preview = client.post("/supervisor/assignment/upload",
                          data={"csrf_token": token, "content": content})
    assert preview.status_code == 422
    assert_shown_escaped(preview.get_data(as_text=True), "csv preview")
    applied = client.post("/supervisor/assignment/upload/apply",
                          data={"csrf_token": token, "content": content})
    assert applied.status_code < 500
    assert_escaped(applied.get_data(as_text=True), "csv apply")
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Case)
                             .where(Case.assigned_agent_id.is_(None))) == 0


def test_bulk_reassignment_with_a_garbage_target_changes_nothing(
        client, db, login, make_user, make_team, ws_case):
    team = make_team()
    login(make_user("supervisor", team=team))
    case = ws_case(make_user("agent", team=team))
    token = csrf_token_from(client.get("/supervisor/assignment/").get_data(as_text=True))
    bulk = client.post("/supervisor/assignment/bulk", data={
        "csrf_token": token, "target": SQLI, "case_id": [SQLI, str(case.id)],
        "reason": HOSTILE})
    assert bulk.status_code < 500
    assert_escaped(bulk.get_data(as_text=True), "bulk")
    db.session.expire_all()
    assert db.session.get(Case, case.id).assigned_agent_id is not None


# --- oversized bodies --------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_with_413(app, client, db, login, make_user):
    limit = app.config["MAX_CONTENT_LENGTH"]
    login(make_user("agent"))
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    big = "x" * (limit + 1)
    page = client.post("/notifications/read-all", data={"csrf_token": token, "pad": big})
    assert page.status_code == 413
    assert "Request too large" in page.get_data(as_text=True)
    # the webhooks read the body to check its signature: refused before that, in JSON
    # (the token-authenticated API checks the token first and never reads an anonymous body)
    for path in ("/api/v1/payments/notifications", "/api/v1/cti/events"):
        response = client.post(path, data=big, content_type="application/json")
        assert response.status_code == 413, path
        body = response.get_json()
        assert body is not None, (path, response.get_data(as_text=True)[:200])
        assert "too_large" in str(body), body
    # with a valid token, the API refuses the oversized body in JSON too
    from portal.permissions import tokens as api_tokens

    device = make_user("field_agent")
    _, raw = api_tokens.create_token(db.session, name="phone", scopes=["api.locations"],
                                     user=device, created_by="test")
    db.session.commit()
    response = client.post("/api/v1/field/locations", data=big, content_type="application/json",
                           headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


def test_the_largest_form_still_fits(client, login, make_user, make_team):
    """The assignment CSV is re-posted as a form field on apply: a file of the most lines
    it may have (CSV_MAX_LINES) must not hit Flask's default 500 kB form-field limit."""
    from portal.assignment.operations import CSV_MAX_LINES

    login(make_user("supervisor", team=make_team()))
    token = csrf_token_from(client.get("/supervisor/assignment/upload").get_data(as_text=True))
    content = "cif,agent\n" + "CIF00001234,nguyen.van.an\n" * (CSV_MAX_LINES - 1)  # 520 kB
    response = client.post("/supervisor/assignment/upload/apply",
                           data={"csrf_token": token, "content": content})
    assert response.status_code != 413
    assert response.status_code < 500


# --- path traversal in file names (T24 SFTP fetch and inbox) ---------------------------------
# The manifest schema's refusal of "../../etc/passwd" is tested in tests/unit/test_t24_manifest.py;
# XML entity expansion (a DTD is refused) in tests/unit/test_t24_parser.py.

HOSTILE_NAMES = (
    "../t24_loans_20261124.jsonl", "../../etc/t24_manifest_20261124.json",
    "/tmp/t24_loans_20261124.jsonl", "t24_loans_20261124.jsonl/../../x",
    "..\\t24_loans_20261124.jsonl", "sub/t24_customers_20261124.xml",
    "t24_loans_20261124.jsonl\x00.txt", "t24_../../manifest_20261124.json",
)


def test_sftp_fetch_refuses_names_that_leave_the_inbox(tmp_path):
    import stat
    from types import SimpleNamespace

    from integrations.sftp import fetch_with

    class HostileSftp:
        got: list[str] = []

        def listdir_attr(self, path):
            return [SimpleNamespace(filename=name, st_size=3, st_mtime=1, st_mode=stat.S_IFREG)
                    for name in (*HOSTILE_NAMES, "t24_loans_20261124.jsonl")]

        def get(self, remote, local):
            self.got.append(remote)
            Path(local).write_bytes(b"{}\n")

    inbox, state = tmp_path / "root" / "inbox", tmp_path / "root" / "state" / "sftp.jsonl"
    sftp = HostileSftp()
    assert fetch_with(sftp, "outbox", inbox, state) == ["t24_loans_20261124.jsonl"]
    assert sftp.got == ["outbox/t24_loans_20261124.jsonl"]
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["root/inbox/t24_loans_20261124.jsonl", "root/state/sftp.jsonl"]


def test_a_manifest_cannot_pull_a_file_from_outside_the_inbox(tmp_path):
    import json

    from integrations.t24.inbox import Inbox

    inbox = Inbox(tmp_path / "t24").ensure()
    outside = tmp_path / "t24" / "t24_loans_20261124.jsonl"  # beside inbox/, not in it
    outside.write_text('{"secret": 1}\n')
    manifest = inbox.inbox / "t24_manifest_20261124.json"
    manifest.write_text(json.dumps({"business_date": "2026-11-24", "files": [
        {"entity": "loans", "name": f"../{outside.name}", "records": 1, "sha256": "0" * 64},
        {"entity": "customers", "name": "/etc/hostname", "records": 1, "sha256": "0" * 64},
    ]}))
    (file_set,) = inbox.pending()
    assert all(path.parent == inbox.inbox for path in file_set.files)
    claimed = inbox.claim(file_set)
    assert all(path.is_relative_to(inbox.work) for path in claimed.all_files)
    assert outside.read_text() == '{"secret": 1}\n'  # not moved


@pytest.mark.parametrize("number", [str(2**31), str(2**63), "9" * 30])
def test_an_id_beyond_its_columns_range_is_not_found(client, db, login, make_user, number):
    """Ids past an integer column (agencies), past bigint (visits) or past any number name no
    row: 404, in JSON for the API, never a database error (500)."""
    from portal.permissions import tokens as api_tokens

    admin = make_user("admin")
    agent = make_user("field_agent")
    _, raw = api_tokens.create_token(db.session, name="phone", scopes=["api.visits"],
                                     user=agent, created_by="test")
    db.session.commit()
    response = client.post(f"/api/v1/field/visits/{number}/checkin",
                           json={"lat": 21.0, "lon": 105.8},
                           headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 404, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"]
    login(admin)
    page = client.get("/")
    response = client.post(f"/placements/agencies/{number}/toggle",
                           data={"csrf_token": csrf_token_from(page.get_data(as_text=True))})
    assert response.status_code == 404, response.get_data(as_text=True)[:300]
