"""Issue 19, finding 9: accounts that contradict themselves.

The case view showed "Next payment 23/10/2026" (in the past) on a 44-DPD card, and a loan with
"0 ₫ due / min 4,417,000 ₫": the demo generator dated a late card's next payment at its oldest
unpaid due, and gave every current loan its instalment as a minimum while nothing was due.

- The demo data and the sandbox twins (T24 files, W4 API, which reuse the demo generator)
  generate accounts that agree with themselves: DPD > 0 => something due, and the next payment
  after the oldest unpaid due; due >= minimum; DPD 0 => nothing due, and the next payment not
  before the business date.
- The case view marks an account whose bank data contradicts itself ("Bank data
  inconsistent: ...") instead of showing it as if it were fine.

``CONTRADICTIONS`` below is this file's own statement of the rules (the product's is
portal/cases/account_checks.py; a test checks that both find the same accounts).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import text

from integrations.sandbox._api import ServerThread
from integrations.sandbox.t24_files import SeedSource, generate_day
from integrations.sandbox.w4_server import DEFAULT_API_KEY, create_app, seed_cards
from integrations.sync import run_sync
from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from portal import clock
from portal.cases import account_checks
from portal.models import Card, Case
from tests.integration.sync_helpers import conn_fixture  # noqa: F401 - fixture

CONTRADICTIONS = """
SELECT 'loan' AS kind, account_number AS account FROM loans
WHERE status <> 'CLOSED' AND (
      (dpd > 0 AND due_amount <= 0) OR (dpd = 0 AND due_amount > 0) OR due_amount < min_pay
   OR (dpd > 0 AND next_payment_date <= CAST(:today AS date) - dpd)
   OR (dpd = 0 AND next_payment_date < CAST(:today AS date)))
UNION ALL
SELECT 'card', contract_number FROM cards
WHERE status <> 'CLOSED' AND (
      (days_overdue > 0 AND min_due <= 0)
   OR (days_overdue > 0 AND due_date <= CAST(:today AS date) - days_overdue)
   OR (days_overdue = 0 AND due_date < CAST(:today AS date)))
ORDER BY 1, 2
"""
BANK_DAY = date(2026, 11, 24)
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def contradictions(session_or_conn, today: date, kind: str | None = None) -> list[tuple]:
    if hasattr(session_or_conn, "execute") and not hasattr(session_or_conn, "cursor"):
        rows = session_or_conn.execute(text(CONTRADICTIONS), {"today": today}).all()
    else:
        rows = session_or_conn.execute(CONTRADICTIONS.replace(":today", "%(today)s"),
                                       {"today": today}).fetchall()
    return [tuple(r) for r in rows if kind is None or r[0] == kind]


def test_the_demo_data_has_no_account_that_contradicts_itself(app, db):
    result = app.test_cli_runner().invoke(args=["seed-demo", "--customers", "400",
                                                "--loans", "600"])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    today = clock.bank_today()
    counts = db.session.execute(text(
        "SELECT (SELECT count(*) FROM loans WHERE dpd > 0), (SELECT count(*) FROM loans "
        "WHERE dpd = 0 AND status <> 'CLOSED'), (SELECT count(*) FROM cards WHERE "
        "days_overdue > 0)")).one()
    assert all(n > 20 for n in counts)  # late and current loans, late cards: all judged
    assert contradictions(db.session, today) == []
    assert account_checks.inconsistencies(db.session, today=today) == []


def test_the_sandbox_twins_serve_accounts_that_agree_with_themselves(app, conn, tmp_path,
                                                                     monkeypatch):
    """T24: day 0, then the deltas of days 1..20 (loans paid, rolled forward, cured,
    instalments falling due and paid); W4 over HTTP: the cards, then three rounds of changes
    (cured or rolled)."""
    source = SeedSource(120, 180, business_date=BANK_DAY)
    load_set(conn, verify(generate_day(tmp_path / "d0", source)))
    assert contradictions(conn, BANK_DAY, "loan") == []
    for day in range(1, 21):  # each day's delta, as the inbox receives them
        load_set(conn, verify(generate_day(tmp_path / f"d{day}", source, day=day,
                                           mode="delta", change_rate=0.05)))
    changed = conn.execute("SELECT count(*) FROM loans WHERE status <> 'CLOSED' AND "
                           "next_payment_date > %s", (BANK_DAY + timedelta(days=30),)).fetchone()
    assert changed[0] > 5  # the day's changes reached the loans
    assert contradictions(conn, BANK_DAY + timedelta(days=20), "loan") == []

    conn.execute("INSERT INTO cases (cif) SELECT cif FROM customers ON CONFLICT DO NOTHING")
    w4_now = datetime.combine(BANK_DAY, time(10, 0), tzinfo=HCM).astimezone(UTC)
    cards = seed_cards(120, 180, business_date=BANK_DAY)
    with ServerThread(create_app(cards, clock=lambda: w4_now)) as server:
        monkeypatch.setitem(app.config, "W4_API_URL", server.url)
        monkeypatch.setitem(app.config, "W4_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setitem(app.config, "SYNC_HTTP_RETRIES", 1)
        assert run_sync("W4", app=app, retries=0).status == "succeeded"
        assert contradictions(conn, BANK_DAY, "card") == []
        for _ in range(3):
            assert requests.post(f"{server.url}/_sandbox/touch", json={"count": 25},
                                 timeout=5).ok
        assert run_sync("W4", app=app, retries=0).status == "succeeded"
    late, cured = conn.execute("SELECT count(*) FILTER (WHERE days_overdue > 0), "
                               "count(*) FILTER (WHERE days_overdue = 0) FROM cards").fetchone()
    assert late > 5 and cured > 5
    assert contradictions(conn, BANK_DAY, "card") == []


@pytest.fixture
def contradicting(db, frozen_now, make_customer, make_loan):
    """The issue's two accounts, beside two that are fine, on 6 Dec 2026."""
    frozen_now(datetime(2026, 12, 6, 3, 0, tzinfo=UTC))
    today = date(2026, 12, 6)
    customer = make_customer()
    db.session.add(Case(cif=customer.cif))
    db.session.add_all([
        Card(contract_number="W4C000000580", cif=customer.cif, masked_card_number="4221 51** "
             "**** 0580", outstanding=Decimal(30_000_000), min_due=Decimal(2_600_000),
             due_date=date(2026, 10, 23), days_overdue=44, bucket="31-60"),
        Card(contract_number="W4C000000581", cif=customer.cif, masked_card_number="4221 51** "
             "**** 0581", outstanding=Decimal(9_000_000), min_due=Decimal(450_000),
             due_date=today + timedelta(days=12), days_overdue=0, bucket="current")])
    db.session.commit()
    bad = make_loan(customer=customer, dpd=0, account_number="LD2600000001",
                    due_amount=Decimal(0), min_pay=Decimal(4_417_000),
                    next_payment_date=today + timedelta(days=9))
    good = make_loan(customer=customer, dpd=12, account_number="LD2600000002",
                     due_amount=Decimal(5_000_000), min_pay=Decimal(2_000_000),
                     next_payment_date=today + timedelta(days=18))
    return {"customer": customer, "today": today, "bad_loan": bad, "good_loan": good}


def _rows(html: str, testid: str) -> dict[str, str]:
    found = re.findall(rf'<tr data-testid="{testid}">(.*?)</tr>', html, re.S)
    return {re.search(r'class="mono primary"[^>]*>([^<]+)<', r).group(1): r for r in found}


def test_the_case_view_marks_an_account_whose_bank_data_contradicts_itself(
        client, login_as, contradicting):
    login_as("agent")
    html = client.get(f"/cases/{contradicting['customer'].cif}").get_data(as_text=True)
    html = re.sub(r"\s+", " ", html)
    loans, cards = _rows(html, "loan-row"), _rows(html, "card-row")
    marker = re.compile(r'data-testid="bank-data-inconsistent">([^<]*)<')
    card_mark = [m for row in cards.values() for m in marker.findall(row)]
    assert len(card_mark) == 1
    assert "Bank data inconsistent" in card_mark[0] and "23/10/2026" in card_mark[0]
    assert marker.search(loans["LD2600000001"])
    assert "4,417,000 ₫" in marker.search(loans["LD2600000001"]).group(1)
    assert not marker.search(loans["LD2600000002"])
    assert html.count('data-testid="bank-data-inconsistent"') == 2


def test_the_case_views_rule_and_this_files_rule_find_the_same_accounts(db, contradicting):
    today = contradicting["today"]
    found = account_checks.inconsistencies(db.session, today=today)
    assert sorted({(i.kind, i.account) for i in found}) == contradictions(db.session, today)
    assert {(i.account, i.code) for i in found} == {
        ("W4C000000580", "next_payment_not_after_overdue"),
        ("LD2600000001", "due_below_minimum")}
    # the statement the invariant check runs over the whole database gives the same rows
    rows = db.session.execute(text(account_checks.ALL_ACCOUNTS_SQL), {"today": today}).all()
    assert sorted((r.kind, r.id, r.code) for r in rows) == sorted(
        (i.kind, i.id, i.code) for i in found)
    # and flask check invariants reads the same, as rows with their ids
    assert sorted((v["kind"], v["id"], v["rule"]) for v in account_checks.violations(
        db.session, clock.now())) == sorted((i.kind, i.id, i.code) for i in found)
