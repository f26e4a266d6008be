"""Recording an action on the case view: dependent dropdowns, follow-up from the result's
offset (bank zone), promise capture with field errors (422), contact-rule refusals (422)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.models import Action, Case, Event, Promise

# 10:00 in Ho Chi Minh City (UTC+7), inside the default contact window 07:00–21:00
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
TODAY = date(2026, 11, 24)


@pytest.fixture
def setup(db, make_user, ws_case, make_phone, ws_action_codes, frozen_now, client, login,
          csrf_token):
    frozen_now(NOW)
    agent = login(make_user("agent"))
    case = ws_case(agent, dpd=20, overdue="6000000")
    phone = make_phone(case.cif, "0912345678")
    token = csrf_token(f"/cases/{case.cif}")
    return agent, case, phone, ws_action_codes, token


def post(client, case, token, **data):
    return client.post(f"/cases/{case.cif}/actions", data=data,
                       headers={"X-CSRFToken": token, "HX-Request": "true",
                                "HX-Target": "action-form"})


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def options(html: str, select_id: str) -> list[str]:
    match = re.search(rf'<select id="{select_id}".*?</select>', html)
    assert match, select_id
    # without the "Select" placeholder
    return re.findall(r'<option value="([^"]*)"', match.group(0))[1:]


def test_dependent_dropdowns(client, setup):
    _, case, _, codes, _ = setup
    url = f"/cases/{case.cif}/action-form"
    html = text(client.get(url, headers={"HX-Request": "true"}))
    assert options(html, "action-type") == ["CALL", "VISIT", "SMS", "EMAIL", "LETTER"]
    assert 'id="action-subtype" name="subtype"' in html and options(html, "action-subtype") == []

    html = text(client.get(f"{url}?type=CALL&changed=type"))
    assert options(html, "action-subtype") == ["OUTBOUND", "INBOUND", "REFERENCE"]
    assert options(html, "action-result") == []

    html = text(client.get(f"{url}?type=CALL&subtype=OUTBOUND&changed=subtype"))
    results = options(html, "action-result")
    assert str(codes[("CALL", "OUTBOUND", "PTP")].id) in results
    assert str(codes[("VISIT", "HOME", "PTP")].id) not in results

    # changing the type drops the subtype and the result chosen for the old type
    ptp = codes[("CALL", "OUTBOUND", "PTP")].id
    html = text(client.get(f"{url}?type=SMS&subtype=OUTBOUND&action_code_id={ptp}"
                           "&changed=type"))
    assert options(html, "action-subtype") == ["REMINDER", "PTP_CONFIRMATION", "OVERDUE_NOTICE"]
    assert 'data-testid="promise-fields"' not in html

    # a promise result shows the promise fields
    html = text(client.get(f"{url}?type=CALL&subtype=OUTBOUND&action_code_id={ptp}"
                           "&changed=action_code_id"))
    assert 'data-testid="promise-fields"' in html and 'name="promise_amount"' in html


def test_inactive_codes_are_not_offered(client, db, setup):
    _, case, _, codes, _ = setup
    codes[("LETTER", "LEGAL_NOTICE", "SENT")].active = False
    db.session.commit()
    html = text(client.get(f"/cases/{case.cif}/action-form?type=LETTER&changed=type"))
    assert options(html, "action-subtype") == ["DEMAND"]


def test_follow_up_prefilled_from_the_offset_in_the_bank_zone(client, setup, frozen_now):
    _, case, _, codes, _ = setup
    hardship = codes[("CALL", "OUTBOUND", "RPC_HARDSHIP")]  # follow-up in 5 days
    # 18:30 UTC on the 24th is 01:30 on the 25th in Ho Chi Minh City
    frozen_now(datetime(2026, 11, 24, 18, 30, tzinfo=UTC))
    html = text(client.get(f"/cases/{case.cif}/action-form?type=CALL&subtype=OUTBOUND"
                           f"&action_code_id={hardship.id}&changed=action_code_id"))
    assert 'name="follow_up_date" value="2026-11-30"' in html
    # an edited follow-up survives re-rendering unless the result changes
    html = text(client.get(f"/cases/{case.cif}/action-form?type=CALL&subtype=OUTBOUND"
                           f"&action_code_id={hardship.id}&follow_up_date=2026-12-02"))
    assert 'name="follow_up_date" value="2026-12-02"' in html


def test_recording_a_promise_to_pay(client, db, setup):
    agent, case, phone, codes, token = setup
    ptp = codes[("CALL", "OUTBOUND", "PTP")]
    response = post(client, case, token, type="CALL", subtype="OUTBOUND",
                    action_code_id=ptp.id, account_number=case.loan.account_number,
                    phone_id=phone.id, promise_amount="3,000,000",
                    promise_date="2026-11-27", notes="Will pay on Friday", follow_up_date="")
    assert response.status_code == 200, text(response)
    assert response.headers["HX-Trigger"] == "case-updated"
    assert 'data-testid="action-saved"' in text(response)

    action = db.session.scalar(select(Action))
    assert (action.type, action.subtype, action.result, action.agent_id) == \
        ("CALL", "OUTBOUND", "PTP", agent.id)
    assert action.account_number == case.loan.account_number and action.at == NOW
    assert action.follow_up_date == TODAY + timedelta(days=1)
    promise = db.session.scalar(select(Promise))
    assert (promise.status, promise.amount, promise.promised_date, promise.action_id) == \
        ("pending", Decimal("3000000"), date(2026, 11, 27), action.id)
    assert promise.account_number == case.loan.account_number
    db.session.expire_all()
    saved = db.session.get(Case, case.id)
    assert saved.next_action_at == clock.bank_datetime(TODAY + timedelta(days=1))
    assert saved.last_contact_at == NOW and saved.last_action_at == NOW
    assert saved.status == "promised"
    assert db.session.scalar(select(Event.type).where(Event.type == "PROMISE_CREATED"))

    timeline = text(client.get(f"/cases/{case.cif}/panels/timeline"))
    assert "Will pay on Friday" in timeline
    promises = text(client.get(f"/cases/{case.cif}/panels/promises"))
    assert 'data-status="pending"' in promises and "3,000,000 ₫" in promises


def test_non_contact_result_leaves_last_contact(client, db, setup):
    _, case, phone, codes, token = setup
    no_answer = codes[("CALL", "OUTBOUND", "NO_ANSWER")]
    response = post(client, case, token, action_code_id=no_answer.id, phone_id=phone.id,
                    follow_up_date="2026-11-26")
    assert response.status_code == 200
    db.session.expire_all()
    saved = db.session.get(Case, case.id)
    assert saved.last_contact_at is None and saved.last_action_at == NOW
    assert saved.next_action_at == clock.bank_datetime(date(2026, 11, 26))  # edited date wins
    assert saved.status == "in_progress"


@pytest.mark.parametrize(("amount", "when", "field", "message"), [
    ("0", "2026-11-27", "amount", "greater than zero"),
    ("-5", "2026-11-27", "amount", "cannot be negative"),
    ("abc", "2026-11-27", "amount", "Enter an amount"),
    ("", "2026-11-27", "amount", "Enter the amount"),
    ("999000000", "2026-11-27", "amount", "is more than"),
    ("1000000", "2026-11-20", "promised_date", "in the past"),
    ("1000000", "2027-06-01", "promised_date", "at most"),
])
def test_promise_errors_are_shown_next_to_their_fields(client, db, setup, amount, when, field,
                                                       message):
    _, case, _, codes, token = setup
    ptp = codes[("CALL", "OUTBOUND", "PTP")]
    response = post(client, case, token, action_code_id=ptp.id, promise_amount=amount,
                    promise_date=when, account_number=case.loan.account_number,
                    notes="kept on error")
    assert response.status_code == 422
    html = text(response)
    match = re.search(rf'data-error-for="{field}">([^<]+)<', html)
    assert match and message in match.group(1), html[:400]
    assert "kept on error" in html  # the form keeps what was typed
    assert db.session.scalar(select(func.count(Action.id))) == 0
    assert db.session.scalar(select(func.count(Promise.id))) == 0


def test_account_of_another_customer_is_refused(client, db, setup, make_loan):
    _, case, _, codes, token = setup
    stranger = make_loan(dpd=5)
    response = post(client, case, token, action_code_id=codes[("CALL", "OUTBOUND", "PTP")].id,
                    promise_amount="1000000", promise_date="2026-11-27",
                    account_number=stranger.account_number)
    assert response.status_code == 422
    assert 'data-error-for="account_number"' in text(response)


def test_missing_result_is_an_error(client, setup):
    _, case, _, _, token = setup
    response = post(client, case, token, type="CALL")
    assert response.status_code == 422 and 'data-error-for="action_code_id"' in text(response)


def test_call_outside_the_contact_window_is_refused(client, db, setup, frozen_now):
    _, case, phone, codes, token = setup
    frozen_now(datetime(2026, 11, 24, 15, 30, tzinfo=UTC))  # 22:30 in Ho Chi Minh City
    response = post(client, case, token, action_code_id=codes[("CALL", "OUTBOUND", "PTP")].id,
                    phone_id=phone.id, promise_amount="1000000", promise_date="2026-11-27")
    assert response.status_code == 422
    html = text(response)
    assert 'data-testid="contact-refused"' in html and "outside the contact window" in html
    # 07:00 next morning in Ho Chi Minh City, machine-readable beside the agent's message
    assert 'data-next-allowed="2026-11-25T00:00:00+00:00"' in html
    assert "25/11/2026 07:00" in html
    assert db.session.scalar(select(func.count(Action.id))) == 0
    # an SMS is not a call or a visit: no window applies
    sms = codes[("SMS", "REMINDER", "SENT")]
    assert post(client, case, token, action_code_id=sms.id).status_code == 200


def test_call_to_a_do_not_contact_number_is_refused(client, db, setup):
    _, case, phone, codes, token = setup
    phone.do_not_contact = True
    db.session.commit()
    response = post(client, case, token, action_code_id=codes[("CALL", "OUTBOUND", "NO_ANSWER")].id,
                    phone_id=phone.id)
    assert response.status_code == 422 and "do-not-contact" in text(response)


def test_the_seven_call_cap_blocks_the_eighth(client, db, setup):
    _, case, phone, codes, token = setup
    code = codes[("CALL", "OUTBOUND", "NO_ANSWER")]
    for days in range(7):
        db.session.add(Action(cif=case.cif, type="CALL", subtype="OUTBOUND", result="NO_ANSWER",
                              action_code_id=code.id, at=NOW - timedelta(days=days, hours=1)))
    db.session.commit()
    response = post(client, case, token, action_code_id=code.id, phone_id=phone.id)
    assert response.status_code == 422 and "already been called 7 times" in text(response)


def test_actions_are_append_only(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("cases.")
             and "action" in r.rule]
    assert {r.endpoint for r in rules} == {"cases.action_form", "cases.record_action"}
    assert all(not ({"PUT", "PATCH", "DELETE"} & r.methods) for r in rules)


def test_do_not_contact_correction_blocks_the_bank_number_too(client, db, setup, make_phone):
    _, case, phone, codes, token = setup
    make_phone(case.cif, phone.number, source_system="CRM", do_not_contact=True)
    response = post(client, case, token, action_code_id=codes[("CALL", "OUTBOUND", "NO_ANSWER")].id,
                    phone_id=phone.id)  # the bank row, not flagged itself
    assert response.status_code == 422 and "do-not-contact" in text(response)


def test_an_action_on_a_card_and_a_promise_made_on_it(client, db, setup):
    from portal.models import Card

    _, case, _, codes, token = setup
    db.session.add(Card(contract_number="W4C-1", cif=case.cif, masked_card_number="4111 **** 1",
                        min_due=Decimal("2000000"), days_overdue=20, bucket="1-30"))
    db.session.commit()
    html = text(client.get(f"/cases/{case.cif}"))
    assert 'option value="W4C-1"' in html
    response = post(client, case, token, action_code_id=codes[("CALL", "OUTBOUND", "PTP")].id,
                    account_number="W4C-1", promise_amount="2000000", promise_date="2026-11-26")
    assert response.status_code == 200, text(response)
    assert db.session.scalar(select(Action.account_number)) == "W4C-1"
    promise = db.session.scalar(select(Promise))
    assert promise.account_number is None and promise.amount == Decimal("2000000")
