"""What agents enter, promises (issue 19, finding 12): at most one pending promise per account of
a customer (and one for the whole customer). A second one is refused with an offer to replace
the pending one; replacing supersedes it (who, when, by which promise), on the timeline and in
the audit log; the database refuses two; the KPIs count a superseded promise neither kept nor
broken; a payment reversal never reopens an older promise beside a newer pending one."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.cases.promises import allocate_payment, undo_allocations
from portal.kpi import operations as kpi
from portal.models import Action, AuditLog, CallRecord, Event, Promise

# 10:00 in Ho Chi Minh City, inside the contact window
NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
TODAY = date(2026, 12, 5)
PROMISED = date(2026, 12, 7)


@pytest.fixture
def setup(db, make_user, ws_case, make_phone, ws_action_codes, frozen_now, client, login,
          csrf_token):
    frozen_now(NOW)
    agent = login(make_user("agent"))
    case = ws_case(agent, dpd=20, overdue="9000000")
    phone = make_phone(case.cif, "0912345678")
    token = csrf_token(f"/cases/{case.cif}")
    return agent, case, phone, ws_action_codes[("CALL", "OUTBOUND", "PTP")], token


def promise(client, case, token, ptp, amount, account=None, **extra):
    return client.post(f"/cases/{case.cif}/actions", data={
        "action_code_id": ptp.id, "promise_amount": amount,
        "promise_date": PROMISED.isoformat(),
        "account_number": case.loan.account_number if account is None else account, **extra},
        headers={"X-CSRFToken": token, "HX-Request": "true", "HX-Target": "action-form"})


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_a_second_pending_promise_is_refused_with_an_offer_to_replace_it(client, db, setup):
    _, case, _, ptp, token = setup
    assert promise(client, case, token, ptp, "5000000").status_code == 200
    response = promise(client, case, token, ptp, "3500000", notes="customer called back")
    assert response.status_code == 422
    html = text(response)
    error = re.search(r'data-error-for="replace_pending">([^<]+)<', html)
    assert error, html[:400]
    assert error.group(1) == (f"A promise of 5,000,000 ₫ by 07/12/2026 is already pending for "
                              f"loan {case.loan.account_number}. Tick “Replace the pending "
                              "promise” to supersede it with this one.")
    assert 'name="replace_pending"' in html and "Replace the pending promise" in html
    assert 'value="3500000"' in html and "customer called back" in html  # nothing lost
    assert db.session.scalars(select(Promise.amount)).all() == [Decimal("5000000")]
    assert db.session.scalar(select(func.count(Action.id))) == 1


def test_replacing_the_pending_promise_supersedes_it_and_records_that_it_did(client, db,
                                                                               setup):
    agent, case, _, ptp, token = setup
    promise(client, case, token, ptp, "5000000")
    response = promise(client, case, token, ptp, "3500000", replace_pending="1")
    assert response.status_code == 200, text(response)
    db.session.expire_all()
    old, new = db.session.scalars(select(Promise).order_by(Promise.id)).all()
    assert (new.status, new.amount) == ("pending", Decimal("3500000"))
    assert (old.status, old.superseded_by_id, old.superseded_at, old.replacement_id) == \
        ("superseded", agent.id, NOW, new.id)
    assert old.resolved_at == NOW and old.paid_amount == 0
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "promise.supersede"))
    assert (audit.entity_id, audit.actor_id, audit.after) == (
        str(old.id), agent.id, {"status": "superseded", "replacement_id": new.id})
    created = db.session.scalars(select(Event).where(Event.type == "PROMISE_CREATED")
                                 .order_by(Event.occurred_at)).all()
    assert created[-1].payload["supersedes"] == old.id
    timeline = text(client.get(f"/cases/{case.cif}/panels/timeline"))
    assert "Superseded" in timeline
    assert ("Promise of 5,000,000 ₫ by 07/12/2026 replaced by a promise of 3,500,000 ₫ by "
            "07/12/2026.") in timeline
    panel = text(client.get(f"/cases/{case.cif}/panels/promises"))
    assert 'data-status="superseded"' in panel and "1 pending · 2 in total" in panel
    # nothing to replace any more: the next promise is refused again, not silently added
    assert promise(client, case, token, ptp, "1000000").status_code == 422


def test_a_whole_customer_promise_is_one_more_slot_not_a_second_for_the_loan(client, db,
                                                                             setup):
    _, case, _, ptp, token = setup
    assert promise(client, case, token, ptp, "2000000").status_code == 200
    assert promise(client, case, token, ptp, "1000000", account="").status_code == 200
    refused = promise(client, case, token, ptp, "500000", account="")
    assert refused.status_code == 422
    assert "already pending for this customer" in text(refused)
    assert db.session.scalar(select(func.count(Promise.id)).where(
        Promise.status == "pending")) == 2


def test_the_database_refuses_two_pending_promises_for_one_account(db, make_customer,
                                                                  make_loan, make_promise):
    customer = make_customer()
    loan = make_loan(customer, dpd=30)
    make_promise(customer, "1000000", PROMISED, loan=loan)
    make_promise(customer, "1000000", PROMISED)  # the whole customer: its own slot
    make_promise(customer, "1000000", PROMISED, loan=loan, status="partially_kept",
                 paid_amount=Decimal("1"))  # not pending
    for account in (loan, None):
        with pytest.raises(IntegrityError):
            make_promise(customer, "3500000", PROMISED, loan=account)
        db.session.rollback()


def test_the_kpis_count_a_superseded_promise_neither_kept_nor_broken(db, make_team, make_user,
                                                                    make_customer):
    team = make_team()
    agent = make_user("agent", team_id=team.id)
    customer = make_customer()
    rows = [("kept", "1000000"), ("broken", "0"), ("superseded", "0")]
    for status, paid in rows:
        db.session.add(Promise(cif=customer.cif, agent_id=agent.id, amount=Decimal("1000000"),
                               promised_date=TODAY, status=status, paid_amount=Decimal(paid)))
    db.session.commit()
    [figures] = [f for f in kpi.dashboard(db.session, [team.id], "today", today=TODAY)
                 .agent_rows if f.key == agent.id]
    assert (figures.promises_due, figures.promises_kept) == (2, 1)


def test_a_reversal_never_reopens_an_older_promise_beside_a_newer_pending_one(
        db, make_customer, make_loan, make_promise, make_payment, frozen_now):
    frozen_now(NOW)
    customer = make_customer()
    loan = make_loan(customer, dpd=30)
    older = make_promise(customer, "1000000", PROMISED, loan=loan)
    payment = make_payment(loan, "1000000")
    allocate_payment(db.session, payment)
    db.session.commit()
    assert older.status == "kept"
    newer = make_promise(customer, "2000000", PROMISED + timedelta(days=1), loan=loan)

    undo_allocations(db.session, payment, today=TODAY)  # the payment bounced
    db.session.commit()
    db.session.expire_all()
    assert (older.status, older.paid_amount, older.replacement_id) == (
        "superseded", Decimal("0"), newer.id)
    assert newer.status == "pending"
    assert db.session.scalar(select(AuditLog.action).where(
        AuditLog.entity_id == str(older.id))) == "promise.supersede"


def test_the_call_outcome_offers_to_replace_the_pending_promise(client, db, setup):
    agent, case, phone, ptp, token = setup
    promise(client, case, token, ptp, "5000000")
    at = NOW - timedelta(minutes=3)
    call = CallRecord(call_id="REPL-1", phone="+84912345678", direction="outbound",
                      started_at=at, answered_at=at, ended_at=at + timedelta(minutes=2),
                      duration_s=120, agent_id=agent.id, cif=case.cif, source="cti")
    action = Action(cif=case.cif, agent_id=agent.id, type="CALL", subtype="OUTBOUND",
                    at=call.ended_at, call_id="REPL-1", source="cti")
    db.session.add_all([call, action])
    db.session.flush()
    call.action_id = action.id
    db.session.commit()
    data = {"action_code_id": ptp.id, "account_number": case.loan.account_number,
            "promise_amount": "3500000", "promise_date": PROMISED.isoformat()}
    refused = client.post("/calls/REPL-1/outcome", data=data, headers={"X-CSRFToken": token})
    assert refused.status_code == 422
    html = text(refused)
    assert 'data-error-for="replace_pending"' in html and 'name="replace_pending"' in html
    saved = client.post("/calls/REPL-1/outcome", data={**data, "replace_pending": "1"},
                        headers={"X-CSRFToken": token})
    assert saved.status_code == 200, text(saved)
    db.session.expire_all()
    assert [(p.status, p.amount) for p in db.session.scalars(
        select(Promise).order_by(Promise.id))] == [("superseded", Decimal("5000000")),
                                                   ("pending", Decimal("3500000"))]


def test_whichever_reversal_comes_first_the_newer_promise_is_the_one_left_pending(
        db, make_customer, make_loan, make_promise, make_payment, frozen_now):
    frozen_now(NOW)
    customer = make_customer()
    loan = make_loan(customer, dpd=30)
    older = make_promise(customer, "1000000", PROMISED, loan=loan)
    first = make_payment(loan, "1000000")
    allocate_payment(db.session, first)
    newer = make_promise(customer, "1000000", PROMISED + timedelta(days=1), loan=loan)
    second = make_payment(loan, "400000")
    allocate_payment(db.session, second)
    db.session.commit()
    assert (older.status, newer.status) == ("kept", "partially_kept")

    undo_allocations(db.session, first, today=TODAY)  # the older one is pending again
    db.session.commit()
    assert (older.status, newer.status) == ("pending", "partially_kept")
    undo_allocations(db.session, second, today=TODAY)  # now both would be pending
    db.session.commit()
    db.session.expire_all()
    assert (older.status, older.replacement_id, newer.status) == ("superseded", newer.id,
                                                                  "pending")
