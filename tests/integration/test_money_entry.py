"""What agents enter, amounts (issue 19, finding 11): every amount field reads the bank's locale
(vi-VN: dots group thousands; VND has no decimals) with one parser (portal.money.parse_money),
and refuses ambiguous input with a message that says what is wrong — on the case view's action
form, a manual call and a visit's outcome alike."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.models import Action, Promise

# 10:00 in Ho Chi Minh City, inside the contact window
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
PROMISED = date(2026, 11, 27)


@pytest.fixture
def setup(db, make_user, ws_case, make_phone, ws_action_codes, frozen_now, client, login,
          csrf_token):
    frozen_now(NOW)
    agent = login(make_user("agent"))
    case = ws_case(agent, dpd=20, overdue="9000000")
    phone = make_phone(case.cif, "0912345678")
    token = csrf_token(f"/cases/{case.cif}")
    return agent, case, phone, ws_action_codes[("CALL", "OUTBOUND", "PTP")], token


def record(client, case, token, amount, **extra):
    return client.post(f"/cases/{case.cif}/actions", data={
        "action_code_id": extra.pop("code").id, "account_number": case.loan.account_number,
        "promise_amount": amount, "promise_date": PROMISED.isoformat(), **extra},
        headers={"X-CSRFToken": token, "HX-Request": "true", "HX-Target": "action-form"})


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


@pytest.mark.parametrize(("typed", "amount"), [
    ("5.000.000", Decimal("5000000")),  # the bank's own writing
    ("5.000.000 ₫", Decimal("5000000")),
    ("5 000 000", Decimal("5000000")),
    ("5000000", Decimal("5000000")),
    ("3,500,000", Decimal("3500000")),  # as the pages print it: cannot be decimals
])
def test_an_amount_in_the_banks_format_is_accepted(client, db, setup, typed, amount):
    _, case, phone, ptp, token = setup
    response = record(client, case, token, typed, code=ptp, phone_id=phone.id)
    assert response.status_code == 200, text(response)
    assert db.session.scalar(select(Promise.amount)) == amount


@pytest.mark.parametrize(("typed", "message"), [
    ("5,000.50", "“5,000.50” mixes separators"),
    ("1.2.3", "“1.2.3” is not an amount: dots group thousands in threes"),
    ("5,000", "“5,000” is ambiguous"),
    ("5.000.000,50", "VND has no decimals"),
    ("5.5", "dots group thousands in threes"),
    ("5.000.000 USD", "Enter an amount such as 5.000.000"),
])
def test_an_ambiguous_amount_is_refused_with_a_precise_message(client, db, setup, typed,
                                                               message):
    _, case, phone, ptp, token = setup
    response = record(client, case, token, typed, code=ptp, phone_id=phone.id,
                      notes="kept on error")
    assert response.status_code == 422
    html = text(response)
    error = re.search(r'data-error-for="amount">([^<]+)<', html)
    assert error and message in error.group(1), html[:300]
    assert f'value="{typed}"' in html and "kept on error" in html  # nothing typed is lost
    assert db.session.scalar(select(func.count(Promise.id))) == 0
    assert db.session.scalar(select(func.count(Action.id))) == 0


def test_a_manual_call_reads_amounts_the_same_way(client, db, setup):
    _, case, phone, ptp, token = setup
    data = {"cif": case.cif, "phone_id": phone.id, "direction": "outbound",
            "action_code_id": ptp.id, "account_number": case.loan.account_number,
            "promise_date": PROMISED.isoformat()}
    refused = client.post("/calls/manual", headers={"X-CSRFToken": token},
                          data={**data, "promise_amount": "1.2.3"})
    assert refused.status_code == 422 and "dots group thousands in threes" in text(refused)
    saved = client.post("/calls/manual", headers={"X-CSRFToken": token},
                        data={**data, "promise_amount": "2.500.000"})
    assert saved.status_code == 200, text(saved)
    assert db.session.scalar(select(Promise.amount)) == Decimal("2500000")
