"""The customer case view (customer 360): every panel, and masking of national ids and phone
numbers for roles without customers.view_pii."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from portal.models import (
    Action,
    Address,
    CallRecord,
    Card,
    Collateral,
    Email,
    LoanCollateral,
    Payment,
    Phone,
    Promise,
    ReferenceCustomer,
    Visit,
)
from portal.permissions import roles
from portal.text import mask_national_id, mask_phone

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
NATIONAL_ID = "079188001234"
PHONE = "0912345678"
REF_PHONE = "0987654321"


@pytest.fixture
def customer_360(db, make_user, ws_case, make_phone, ws_action_codes, frozen_now):
    frozen_now(NOW)
    agent = make_user("agent", full_name="Tran Thi Agent")
    field_agent = make_user("field_agent", full_name="Vo Van Field")
    case = ws_case(agent, dpd=45, overdue="7500000", national_id=NATIONAL_ID,
                   segment="AFFLUENT", assigned_field_agent_id=field_agent.id)
    cif = case.cif
    make_phone(cif, PHONE, is_primary=True)
    make_phone(cif, "0900000001", do_not_contact=True, source_system="CRM")
    db.session.add_all([
        Address(cif=cif, type="HOME", line1="12 Nguyen Hue", district="Quan 1",
                city="Ho Chi Minh", source_system="T24", is_verified=True),
        Email(cif=cif, type="PERSONAL", address="khach@example.vn", source_system="T24"),
        ReferenceCustomer(ref_cif="REF0001", primary_cif=cif, relationship_type="spouse",
                          name="Le Thi Spouse", national_id="079199005678", source_system="T24"),
        Card(contract_number="W4C777", cif=cif, masked_card_number="4111 **** **** 7777",
             credit_limit=Decimal("50000000"), outstanding=Decimal("12000000"),
             min_due=Decimal("1200000"), days_overdue=15, bucket="1-30"),
        Collateral(collateral_number="COL-1", cif=cif, type="VEHICLE", value=Decimal("300000000"),
                   vehicle_make="Honda", vehicle_model="City", license_plate="51H-123.45"),
        Promise(cif=cif, account_number=case.loan.account_number, agent_id=agent.id,
                amount=Decimal("2500000"), promised_date=date(2026, 11, 20), status="broken"),
        Payment(reference_number="PAY-1", account_number=case.loan.account_number, cif=cif,
                amount=Decimal("1500000"), currency="VND", paid_at=NOW, channel="BANK_TRANSFER"),
        Visit(cif=cif, agent_id=field_agent.id, planned_for=date(2026, 11, 23), status="completed",
              verification="verified"),
        CallRecord(call_id="CALL-1", agent_id=agent.id, cif=cif, phone=PHONE,
                   direction="outbound", started_at=NOW, duration_s=95,
                   disposition="ANSWERED"),
    ])
    db.session.flush()
    db.session.add(Phone(ref_cif="REF0001", type="MOBILE", number=REF_PHONE,
                         source_system="T24"))
    db.session.add(LoanCollateral(account_number=case.loan.account_number,
                                  collateral_number="COL-1"))
    code = ws_action_codes[("CALL", "OUTBOUND", "RPC_REFUSED")]
    db.session.add(Action(cif=cif, agent_id=agent.id, action_code_id=code.id, type="CALL",
                          subtype="OUTBOUND", result="RPC_REFUSED", at=NOW,
                          notes="Says salary comes next week"))
    db.session.commit()
    return agent, case


def test_every_panel_is_shown(client, login, customer_360):
    agent, case = customer_360
    login(agent)
    response = client.get(f"/cases/{case.cif}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for panel in ("case-header", "panel-accounts", "panel-promises", "panel-timeline",
                  "panel-payments", "panel-calls", "panel-visits", "panel-collaterals",
                  "panel-contacts", "panel-references", "panel-record-action"):
        assert f'data-testid="{panel}"' in html, panel
    assert "Tran Thi Agent" in html and "Vo Van Field" in html  # assigned agents
    assert "7,500,000\u00a0₫" in html  # total overdue
    assert 'data-testid="max-dpd">45' in html and "31-60 DPD" in html
    assert "Affluent" in html
    assert case.loan.account_number in html and "W4C777" in html and "4111 **** **** 7777" in html
    assert "Honda City" in html and "300,000,000\u00a0₫" in html
    assert "12 Nguyen Hue" in html and "khach@example.vn" in html and "Le Thi Spouse" in html
    assert "Says salary comes next week" in html and "Customer reached, refused to pay" in html
    assert 'data-status="broken"' in html and "1,500,000\u00a0₫" in html
    assert "Do not contact" in html and "Verified" in html
    assert "1:35" in html  # call duration


def test_agent_sees_pii(client, login, customer_360):
    agent, case = customer_360
    login(agent)
    html = client.get(f"/cases/{case.cif}").get_data(as_text=True)
    # phones in the one national format, whatever the rows hold
    assert NATIONAL_ID in html and "0912 345 678" in html and "0987 654 321" in html


def test_role_without_view_pii_sees_masked_values(client, login_as, customer_360, monkeypatch):
    _, case = customer_360
    supervisor = roles.ROLE_PERMISSIONS["supervisor"]
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, "supervisor",
                        supervisor - {"customers.view_pii"})
    login_as("supervisor")
    html = client.get(f"/cases/{case.cif}").get_data(as_text=True)
    assert 'data-testid="case-header"' in html
    for secret in (NATIONAL_ID, PHONE, REF_PHONE, "079199005678", PHONE[1:], "+84912345678",
                   "0912 345", "912 345", "0987 654"):
        assert secret not in html, secret
    assert mask_national_id(NATIONAL_ID) in html and "•••• ••• 678" in html
    assert 'data-testid="panel-record-action"' not in html  # supervisors do not record actions


def test_masks():
    assert mask_phone("0912345678") == "•••••••678"
    assert mask_phone("0912 345 678") == "•••• ••• 678"  # the spacing of the shown format stays
    assert mask_national_id("079188001234") == "••••••••1234"
    assert mask_phone(None) == "" and mask_national_id("") == ""


def test_roles_without_cases_view_are_refused(client, login_as, customer_360):
    _, case = customer_360
    login_as("ops")
    assert client.get(f"/cases/{case.cif}").status_code == 403


def test_unknown_customer_is_404(client, login_as, db):
    login_as("agent")
    assert client.get("/cases/NO-SUCH-CIF").status_code == 404


def test_lock_banner_for_a_case_taken_by_a_colleague(client, login, db, make_user,
                                                     customer_360):
    _, case = customer_360
    colleague = make_user("agent", full_name="Pham Colleague")
    case.locked_by_id = colleague.id
    case.locked_until = datetime(2026, 11, 24, 3, 8, tzinfo=UTC)
    db.session.commit()
    login(make_user("agent"))
    html = client.get(f"/cases/{case.cif}").get_data(as_text=True)
    assert "Pham Colleague" in html and "is working this case until 10:08" in html


def test_panels_refresh_as_partials(client, login, customer_360):
    agent, case = customer_360
    login(agent)
    for name in ("timeline", "promises", "header", "contacts"):
        response = client.get(f"/cases/{case.cif}/panels/{name}",
                              headers={"HX-Request": "true"})
        assert response.status_code == 200 and "<html" not in response.get_data(as_text=True)
    assert client.get(f"/cases/{case.cif}/panels/secrets").status_code == 404
