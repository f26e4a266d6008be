"""What agents enter, phones (issue 19, finding 10): a correction that changes nothing is not a
change; one primary per type per customer, whoever set it (the CRM's choice unsets the bank's,
a bank sync keeps it, the database refuses a second); numbers stored in E.164 and shown in one
national format on every page (case view, action form, My calls)."""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from integrations.sandbox.t24_files import SeedSource, generate_day
from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from integrations.t24.transform import transform
from portal import clock
from portal.models import Action, AuditLog, CallRecord, Event, Phone
from tests.unit.test_t24_transform import CUSTOMER, raw


@pytest.fixture
def setup(db, make_user, ws_case, make_phone, client, login, csrf_token):
    agent = login(make_user("agent"))
    case = ws_case(agent)
    bank = make_phone(case.cif, "0903123456", source_system="T24", is_primary=True)
    token = csrf_token(f"/cases/{case.cif}")
    return agent, case, bank, token


def post(client, token, url, **data):
    return client.post(url, data=data, headers={"X-CSRFToken": token, "HX-Request": "true",
                                                "HX-Target": "panel-contacts"})


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def primaries(db, cif: str, kind: str = "MOBILE") -> list[Phone]:
    db.session.expire_all()
    return db.session.scalars(select(Phone).where(Phone.cif == cif, Phone.type == kind,
                                                  Phone.is_primary.is_(True))).all()


def test_saving_correct_on_a_bank_phone_without_a_change_changes_nothing(client, db, setup):
    _, case, bank, token = setup
    form = text(client.get(f"/cases/{case.cif}/contacts/phone/{bank.id}/edit"))
    assert 'value="0903 123 456"' in form and "checked" in form  # as every page shows it
    # "Correct", then Save with nothing touched (the number as the form shows it, or retyped)
    for number in ("0903123456", "0903 123 456", "+84 903 123 456"):
        response = post(client, token, f"/cases/{case.cif}/contacts/phone/{bank.id}",
                        type="MOBILE", number=number, is_primary="1", notes="")
        assert response.status_code == 200
        assert "Nothing changed." in text(response)
        assert "HX-Trigger" not in response.headers
    assert db.session.scalar(select(func.count(Phone.id))) == 1  # no CRM copy
    assert db.session.scalar(select(func.count(AuditLog.id))) == 0
    assert db.session.scalar(select(func.count(Event.id)).where(
        Event.type == "CONTACT_UPDATED")) == 0
    assert [p.id for p in primaries(db, case.cif)] == [bank.id]


def test_a_flag_already_set_is_not_a_change(client, db, setup):
    _, case, bank, token = setup
    url = f"/cases/{case.cif}/contacts/phone/{bank.id}/flags"
    assert post(client, token, url, flag="do_not_contact", value="1").status_code == 200
    # the same flag again on the bank row: the CRM row of that number already says so
    response = post(client, token, url, flag="do_not_contact", value="1")
    assert "Nothing changed." in text(response)
    crm = db.session.scalars(select(Phone).where(Phone.source_system == "CRM")).all()
    assert len(crm) == 1 and crm[0].do_not_contact  # one CRM row per number


def test_a_correction_made_primary_leaves_one_primary_of_its_type(client, db, setup):
    agent, case, bank, token = setup
    response = post(client, token, f"/cases/{case.cif}/contacts/phone/{bank.id}",
                    type="MOBILE", number="0903 999 888", is_primary="1")
    assert response.status_code == 200 and "Saved as a CRM correction" in text(response)
    [primary] = primaries(db, case.cif)
    assert (primary.source_system, primary.number_e164) == ("CRM", "+84903999888")
    assert db.session.get(Phone, bank.id).is_primary is False  # the bank's primary gave way
    unset = db.session.scalar(select(AuditLog).where(AuditLog.action == "phone.unset_primary"))
    assert (unset.entity_id, unset.after["primary_id"]) == (str(bank.id), primary.id)
    assert unset.actor_id == agent.id
    # correcting the same bank row to the same number again goes to that CRM row
    again = post(client, token, f"/cases/{case.cif}/contacts/phone/{bank.id}",
                 type="MOBILE", number="0903999888", is_primary="1")
    assert "Nothing changed." in text(again)
    assert db.session.scalar(select(func.count(Phone.id)).where(
        Phone.source_system == "CRM")) == 1
    # a new primary of the same type, added: still one
    added = post(client, token, f"/cases/{case.cif}/contacts/phone", type="MOBILE",
                 number="0911 222 333", is_primary="1")
    assert added.status_code == 200
    assert [p.number_e164 for p in primaries(db, case.cif)] == ["+84911222333"]
    # a primary of another type does not touch the mobile one
    post(client, token, f"/cases/{case.cif}/contacts/phone", type="HOME",
         number="028 3812 3456", is_primary="1")
    assert [p.number_e164 for p in primaries(db, case.cif)] == ["+84911222333"]
    assert [p.number for p in primaries(db, case.cif, "HOME")] == ["028 3812 3456"]


def test_a_number_already_on_file_is_not_added_twice(client, db, setup):
    _, case, _, token = setup
    response = post(client, token, f"/cases/{case.cif}/contacts/phone", type="MOBILE",
                    number="+84 903 123 456")
    assert response.status_code == 422
    assert "already has this phone" in text(response)
    assert db.session.scalar(select(func.count(Phone.id))) == 1


def test_the_database_refuses_a_second_primary_of_one_type(db, make_customer, make_phone):
    customer = make_customer()
    make_phone(customer, "0903000001", is_primary=True)
    make_phone(customer, "0903000002", type="WORK", is_primary=True)  # another type: fine
    with pytest.raises(IntegrityError):
        make_phone(customer, "0903000003", is_primary=True, source_system="CRM")
    db.session.rollback()


def test_a_number_is_stored_in_e164_and_shown_in_one_national_format(
        client, db, setup, ws_action_codes, make_phone):
    agent, case, _, token = setup
    response = post(client, token, f"/cases/{case.cif}/contacts/phone", type="WORK",
                    number="+84 (0)912.345.678")
    assert response.status_code == 200, text(response)
    phone = db.session.scalar(select(Phone).where(Phone.source_system == "CRM"))
    assert (phone.number, phone.number_e164) == ("0912 345 678", "+84912345678")
    # the bank row stored as T24 sent it, shown the same way
    panel = text(client.get(f"/cases/{case.cif}/panels/contacts"))
    assert "0903 123 456" in panel and "0912 345 678" in panel
    assert "0903123456" not in panel and "+84" not in panel
    form = text(client.get(f"/cases/{case.cif}/action-form?type=CALL&changed=type"))
    assert "0903 123 456 · Mobile" in form and "0912 345 678 · Work" in form
    # My calls: the call centre's E.164 number, shown as the case view shows it
    at = clock.now() - timedelta(minutes=5)
    db.session.add(CallRecord(call_id="FMT-1", phone="+84903123456", direction="outbound",
                              started_at=at, ended_at=at + timedelta(seconds=30),
                              agent_id=agent.id, cif=case.cif, source="cti"))
    db.session.commit()
    calls = text(client.get("/calls/"))
    assert "FMT-1" in calls and "0903 123 456" in calls and "+84903123456" not in calls
    history = text(client.get(f"/cases/{case.cif}/panels/history"))
    assert "0903 123 456" in history and "+84903123456" not in history


def test_an_unreadable_number_is_refused_with_the_form_kept(client, db, setup):
    _, case, _, token = setup
    response = post(client, token, f"/cases/{case.cif}/contacts/phone", type="MOBILE",
                    number="12 34", notes="from the neighbour")
    assert response.status_code == 422
    html = text(response)
    assert 'data-error-for="number"' in html and "from the neighbour" in html
    assert db.session.scalar(select(func.count(Phone.id))) == 1


def test_t24_marks_one_primary_per_type_in_a_record():
    phones = [{"type": "MOBILE", "number": "0901 234 567", "is_primary": True},
              {"type": "MOBILE", "number": "0901 234 568", "is_primary": True},
              {"type": "HOME", "number": "028 3812 3456", "is_primary": True}]
    row = transform(raw("customers", {**CUSTOMER, "phones": phones}))
    assert [(p["number_e164"], p["is_primary"]) for p in row.contacts["phones"]] == [
        ("+84901234567", True), ("+84901234568", False), ("+842838123456", True)]


def test_a_t24_sync_keeps_the_primary_the_crm_chose(app, db, tmp_path, client, login,
                                                    make_user, csrf_token):
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    source = SeedSource(20, 30, business_date=clock.bank_today())
    with psycopg.connect(url, autocommit=True) as conn:
        first = load_set(conn, verify(generate_day(tmp_path / "d0", source)), batch_size=10)
        assert first.status == "succeeded", first.errors
    bank = db.session.scalar(select(Phone).where(
        Phone.source_system == "T24", Phone.cif.is_not(None), Phone.is_primary.is_(True),
        Phone.type == "MOBILE").order_by(Phone.id).limit(1))
    login(make_user("agent"))
    token = csrf_token(f"/cases/{bank.cif}")
    response = post(client, token, f"/cases/{bank.cif}/contacts/phone", type="MOBILE",
                    number="0988 777 666", is_primary="1")
    assert response.status_code == 200, text(response)

    with psycopg.connect(url, autocommit=True) as conn:
        again = load_set(conn, verify(generate_day(tmp_path / "d1", source)), batch_size=10)
    assert again.status == "succeeded", again.errors
    assert again.changed == 0  # the bank's flag held back is not a change every day
    [primary] = primaries(db, bank.cif)
    assert (primary.source_system, primary.number_e164) == ("CRM", "+84988777666")
    assert db.session.get(Phone, bank.id).is_primary is False
    duplicates = db.session.execute(select(Phone.cif, Phone.type).where(
        Phone.is_primary.is_(True), Phone.cif.is_not(None)).group_by(Phone.cif, Phone.type)
        .having(func.count() > 1)).all()
    assert duplicates == []
    assert db.session.scalar(select(func.count(Action.id))) == 0
