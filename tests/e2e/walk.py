"""Walking the portal as each demo role does: the pages of its navigation, the named pages
(a case view, a run detail, …) and one page of each kind they link to. Shared by the layout
walk (tables fit their cards) and the Vietnamese walk (every page, every role, 1440 and 390 px:
no English, no sideways scroll, axe-core clean).

``seed_walk_data`` makes the data they walk over: the demo's, plus the rows the demo does not
make (reconciliation gaps of each kind, runs with long errors, quarantined records, API
tokens)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy import text

from portal import clock
from portal.models import Discrepancy, IntegrationRun, QuarantinedRecord, ReconciliationRun, User
from portal.permissions import tokens as api_tokens
from portal.permissions.roles import API_SCOPES
from portal.seed.demo import DEFAULT_DEMO_PASSWORD

DEMO_ROLES = {"agent": "agent01", "field_agent": "field01", "supervisor": "sup1", "ops": "ops",
              "admin": "admin", "auditor": "auditor"}
PASSWORD = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
MAX_LINKED_PAGES = 40  # pages reached from the navigation's pages, per role
SKIP = re.compile(r"^/(auth|static|api|metrics|login|logout)\b|\.csv\b|/export|/download|/map/data")


def shape(path: str) -> str:
    """/cases/CIF0001 and /cases/CIF0002 are one kind of page: ids become '*'."""
    return "/".join("*" if re.search(r"\d", part) else part for part in path.split("/"))


def seed_walk_data(app, db) -> dict[str, str]:
    """The demo data (``flask seed-demo``, small) and the operations rows it does not make
    (reconciliation gaps, runs with errors, API tokens); returns the named pages to visit."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo", "--customers", "200", "--loans", "300"])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    now = clock.now()
    ops_user = db.session.query(User).filter_by(username="ops").one()
    admin = db.session.query(User).filter_by(username="admin").one()
    field = db.session.query(User).filter_by(username="field01").one()

    # a payment reconciliation with a gap of each kind, some open, one resolved at length
    day = clock.add_days(clock.bank_today(), -1)
    run = ReconciliationRun(integration="PAYMENTS", business_date=day, status="partial",
                            source_count=1284, crm_count=1281, matched_count=1277,
                            discrepancy_count=7, source_total=Decimal("18734560000"),
                            crm_total=Decimal("18731060000"), started_at=now - timedelta(hours=9),
                            finished_at=now - timedelta(hours=9) + timedelta(seconds=14))
    db.session.add(run)
    db.session.flush()
    gaps = [
        ("missing_in_crm", {"amount": "12500000", "currency": "VND", "status": "settled"}, None),
        ("missing_in_source", None, {"amount": "3500000", "currency": "VND",
                                     "status": "received", "payment_id": 48213}),
        ("amount_mismatch", {"amount": "125000000", "currency": "VND", "status": "settled"},
         {"amount": "12500000", "currency": "VND", "status": "received", "payment_id": 48214}),
        ("status_mismatch", {"amount": "7250000", "currency": "VND", "status": "reversed"},
         {"amount": "7250000", "currency": "VND", "status": "received", "payment_id": 48215}),
        ("missing_in_crm", {"error": "ingest_failed",
                            "message": "account LN0000987654 is closed in the CRM"}, None),
    ]
    for n, (kind, source, crm) in enumerate(gaps):
        db.session.add(Discrepancy(run_id=run.id, kind=kind, entity="payment",
                                   key=f"FT{day:%y%m%d}{n:04d}VCBHCMC0012345",
                                   source_value=source, crm_value=crm))
    db.session.add(Discrepancy(
        run_id=run.id, kind="amount_mismatch", entity="payment", key="FT24110900019876543",
        source_value={"amount": "9900000", "currency": "VND", "status": "settled"},
        crm_value={"amount": "990000", "currency": "VND", "status": "received",
                   "payment_id": 48216},
        status="resolved", resolved_by_id=ops_user.id, resolved_at=now - timedelta(hours=2),
        resolution="Teller keyed 990,000 instead of 9,900,000; corrected in T24 and the CRM "
                   "payment adjusted after the customer's receipt was checked by the branch."))

    # integration runs with long errors and quarantined records (run detail, runs, quarantine)
    w4 = IntegrationRun(integration="W4", kind="sync", trigger="manual", status="partial",
                        started_at=now - timedelta(hours=3), triggered_by_id=ops_user.id,
                        finished_at=now - timedelta(hours=3) + timedelta(seconds=41),
                        duration_ms=41_000, extracted=3120, transformed=3106, loaded=2980,
                        unchanged=126, quarantined=14, failed=0,
                        errors=[{"message": "card W4C000000580: contract holder changed from "
                                            "10001406 to 10001336; held for an ops decision",
                                 "record": "W4C000000580"},
                                {"message": "HTTPSConnectionPool(host='w4.internal.bank.vn', "
                                            "port=443): Read timed out. (read timeout=10)"}])
    gps = IntegrationRun(integration="GPS", kind="forward", trigger="schedule",
                         status="failed", started_at=now - timedelta(minutes=40),
                         finished_at=now - timedelta(minutes=39), duration_ms=2_300,
                         extracted=17, loaded=0, failed=17,
                         errors=[{"message": "503 Service Unavailable from the GPS system"}])
    db.session.add_all([w4, gps])
    db.session.flush()
    for n in range(3):
        db.session.add(QuarantinedRecord(
            integration="W4", run_id=w4.id, entity="card", record_key=f"W4C00000{n:04d}",
            reason="due_date: '31/02/2026' is not a date (expected YYYY-MM-DD)",
            payload={"contract_number": f"W4C00000{n:04d}", "due_date": "31/02/2026",
                     "min_due": "1,250,000", "credit_limit": "50000000"}))

    # API tokens: long names, many scopes, one revoked
    api_tokens.create_token(db.session, name="Phone – Vo Minh Duc (Samsung Galaxy A54, HCMC "
                                             "field team 1, MDM asset HCM-FLD-000457, issued 2026)",
                            scopes=["api.profile", "api.locations", "api.visits"], user=field,
                            created_by=admin)
    api_tokens.create_token(db.session, name="Call centre CTI connector (Genesys production)",
                            scopes=["api.calls"], user=None, created_by=admin,
                            expires_at=now + timedelta(days=90))
    api_tokens.create_token(db.session, name="Integration monitor (Prometheus, all scopes)",
                            scopes=list(API_SCOPES), user=None, created_by=admin)
    for agent in db.session.query(User).filter_by(role="field_agent").order_by(User.id).limit(3):
        api_tokens.create_token(db.session, name=f"phone-sim {agent.username}",
                                scopes=["api.locations", "api.visits"], user=agent,
                                created_by="phone-sim")
    old, _ = api_tokens.create_token(db.session, name="Old CTI token", scopes=["api.calls"],
                                     user=None, created_by=admin)
    api_tokens.revoke_token(db.session, old, revoked_by=admin)
    db.session.commit()

    # the case view with the most products and contacts of agent01's cases
    cif = db.session.execute(text("""
        SELECT c.cif FROM cases c JOIN users u ON u.id = c.assigned_agent_id
        WHERE u.username = 'agent01'
        ORDER BY (SELECT count(*) FROM loans l WHERE l.cif = c.cif)
               + (SELECT count(*) FROM cards k WHERE k.cif = c.cif)
               + (SELECT count(*) FROM phones p WHERE p.cif = c.cif) DESC, c.cif
        LIMIT 1""")).scalar_one()
    return {"case": f"/cases/{cif}", "run": f"/ops/integrations/runs/{w4.id}",
            "gps_run": f"/ops/integrations/runs/{gps.id}",
            "discrepancies": "/payments/reconciliation?status=all",
            "tokens": "/admin/tokens", "new_team": "/admin/teams/new",
            "team": f"/admin/teams/{field.team_id}", "new_user": "/admin/users/new",
            "user": f"/admin/users/{field.id}",
            "audit": "/admin/audit?user=admin&action=api_token.create"}


def visit(page, url: str) -> int:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    return response.status if response else 0


def nav_paths(page) -> list[str]:
    links = page.locator("#sidebar nav a")  # named in the page's language: found by place
    return [urlsplit(links.nth(i).get_attribute("href")).path for i in range(links.count())]


def content_paths(page) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "#content a[href^='/']", "els => els.map(e => e.getAttribute('href'))")
    return [h for h in hrefs if not SKIP.search(urlsplit(h).path)]


def walk(page, base: str, named: list[str], *, max_linked: int = MAX_LINKED_PAGES
         ) -> Iterator[str]:
    """Visit the role's pages (signed in on ``page``): its navigation's, the ``named`` ones,
    then one of each kind they link to. Yields each path once its page has loaded; a named
    page that is not this role's (403, 404) is passed over; any other status fails."""
    queue = [(url, True) for url in dict.fromkeys([*nav_paths(page), *named])]
    seen_shapes: set[str] = set()
    linked = 0
    while queue:
        url, is_named = queue.pop(0)
        path = urlsplit(url).path
        if SKIP.search(path) or (not is_named and shape(path) in seen_shapes):
            continue
        seen_shapes.add(shape(path))
        status = visit(page, base + url)
        if status in (403, 404):
            continue
        assert status == 200, f"{url} answered {status}"
        yield url
        for href in content_paths(page):
            if linked < max_linked and shape(urlsplit(href).path) not in seen_shapes \
                    and all(href != queued for queued, _ in queue):
                queue.append((href, False))
                linked += 1
