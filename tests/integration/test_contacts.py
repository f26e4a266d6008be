"""Contact updates: add/edit phones, addresses and emails, verified and do-not-contact flags;
bank rows stay read-only (corrections become CRM rows); audit row + CONTACT_UPDATED each time."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.models import Address, AuditLog, Email, Event, Phone


@pytest.fixture
def setup(db, make_user, ws_case, make_phone, client, login, csrf_token):
    agent = login(make_user("agent"))
    case = ws_case(agent)
    phone = make_phone(case.cif, "0912345678", source_system="T24")
    token = csrf_token(f"/cases/{case.cif}")
    return agent, case, phone, token


def post(client, token, url, **data):
    return client.post(url, data=data, headers={"X-CSRFToken": token, "HX-Request": "true",
                                                "HX-Target": "panel-contacts"})


def events(db, operation=None):
    rows = db.session.scalars(select(Event).where(Event.type == "CONTACT_UPDATED")
                              .order_by(Event.occurred_at)).all()
    return [e for e in rows if operation is None or e.payload["operation"] == operation]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_add_a_phone(client, db, setup):
    agent, case, _, token = setup
    response = post(client, token, f"/cases/{case.cif}/contacts/phone", type="MOBILE",
                    number="0933 111 222", is_primary="1", notes="Given by the customer")
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "contacts-updated"
    html = text(response)
    assert "0933 111 222" in html and "Phone added." in html
    phone = db.session.scalar(select(Phone).where(Phone.source_system == "CRM"))
    assert (phone.number, phone.number_e164, phone.is_primary) == \
        ("0933 111 222", "+84933111222", True)
    audit = db.session.scalar(select(AuditLog))
    assert (audit.action, audit.entity_type, audit.entity_id, audit.actor_id) == \
        ("phone.create", "phone", str(phone.id), agent.id)
    [event] = events(db)
    assert event.payload["operation"] == "created" and event.payload["cif"] == case.cif
    assert event.payload["contact_id"] == phone.id and event.payload["actor_id"] == agent.id


def test_invalid_phone_is_422_with_the_form(client, db, setup):
    _, case, _, token = setup
    response = post(client, token, f"/cases/{case.cif}/contacts/phone", type="MOBILE",
                    number="call me")
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#contact-form-slot"
    assert 'data-error-for="number"' in text(response)
    assert db.session.scalar(select(func.count(Phone.id))) == 1
    assert not events(db)


def test_correcting_a_bank_phone_creates_a_crm_row(client, db, setup):
    _, case, bank_phone, token = setup
    response = post(client, token, f"/cases/{case.cif}/contacts/phone/{bank_phone.id}",
                    type="MOBILE", number="0912345679")
    assert response.status_code == 200
    assert "Saved as a CRM correction" in text(response)
    db.session.expire_all()
    assert db.session.get(Phone, bank_phone.id).number == "0912345678"  # bank row untouched
    correction = db.session.scalar(select(Phone).where(Phone.source_system == "CRM"))
    assert (correction.number, correction.number_e164) == ("0912 345 679", "+84912345679")
    assert correction.notes == f"Correction of T24 #{bank_phone.id}"
    audit = db.session.scalar(select(AuditLog))
    assert audit.action == "phone.correct" and audit.before["number"] == "0912345678"
    assert audit.after["number"] == "0912 345 679"
    [event] = events(db)
    assert event.payload["changes"]["number"] == {"old": "0912345678", "new": "0912 345 679"}


def test_editing_a_crm_row_changes_it_in_place(client, db, setup, make_phone):
    _, case, _, token = setup
    mine = make_phone(case.cif, "0977000111", source_system="CRM")
    response = post(client, token, f"/cases/{case.cif}/contacts/phone/{mine.id}",
                    type="WORK", number="0977000222")
    assert response.status_code == 200
    db.session.expire_all()
    assert (db.session.get(Phone, mine.id).number, db.session.get(Phone, mine.id).type) == \
        ("0977 000 222", "WORK")
    assert db.session.scalar(select(func.count(Phone.id))) == 2
    [event] = events(db, "updated")
    assert set(event.payload["changes"]) == {"type", "number"}


def test_flags_on_crm_and_bank_rows(client, db, setup, make_phone):
    agent, case, bank_phone, token = setup
    mine = make_phone(case.cif, "0977000111", source_system="CRM")
    url = f"/cases/{case.cif}/contacts/phone/{mine.id}/flags"
    assert post(client, token, url, flag="is_verified", value="1").status_code == 200
    db.session.expire_all()
    verified = db.session.get(Phone, mine.id)
    assert verified.is_verified and verified.verified_by_id == agent.id and verified.verified_at
    assert events(db, "verified")
    assert post(client, token, url, flag="do_not_contact", value="1").status_code == 200
    db.session.expire_all()
    assert db.session.get(Phone, mine.id).do_not_contact
    # a bank row is never changed: the flag goes on a CRM copy
    url = f"/cases/{case.cif}/contacts/phone/{bank_phone.id}/flags"
    assert post(client, token, url, flag="do_not_contact", value="1").status_code == 200
    db.session.expire_all()
    assert not db.session.get(Phone, bank_phone.id).do_not_contact
    copy = db.session.scalar(select(Phone).where(Phone.number == "0912345678",
                                                 Phone.source_system == "CRM"))
    assert copy.do_not_contact
    assert db.session.scalar(select(func.count(AuditLog.id))) == 3
    assert len(events(db)) == 3
    assert post(client, token, url, flag="is_primary", value="1").status_code == 400


def test_address_and_email(client, db, setup):
    _, case, _, token = setup
    assert post(client, token, f"/cases/{case.cif}/contacts/address", type="HOME",
                line1="45 Le Loi", district="Quan 1", city="Ho Chi Minh").status_code == 200
    assert post(client, token, f"/cases/{case.cif}/contacts/email", type="PERSONAL",
                address="an@example.vn").status_code == 200
    bad = post(client, token, f"/cases/{case.cif}/contacts/email", type="PERSONAL",
               address="not-an-email")
    assert bad.status_code == 422
    assert db.session.scalar(select(Address.line1)) == "45 Le Loi"
    assert db.session.scalar(select(Email.address)) == "an@example.vn"
    assert {e.payload["contact_type"] for e in events(db)} == {"address", "email"}


def test_contact_of_another_customer_is_404(client, db, setup, ws_case, make_phone):
    _, case, _, token = setup
    other = make_phone(ws_case().cif, "0911000000")
    response = post(client, token, f"/cases/{case.cif}/contacts/phone/{other.id}",
                    type="MOBILE", number="0911000001")
    assert response.status_code == 404
    assert post(client, token, f"/cases/{case.cif}/contacts/fax", type="X").status_code == 404


def test_forms_render(client, setup):
    _, case, bank_phone, _ = setup
    html = text(client.get(f"/cases/{case.cif}/contacts/phone/{bank_phone.id}/edit"))
    assert 'value="0912 345 678"' in html and "your correction is saved as a CRM contact" in html
    html = text(client.get(f"/cases/{case.cif}/contacts/address/new"))
    assert 'name="line1"' in html


def test_supervisor_cannot_change_contacts(client, login_as, setup, csrf_token):
    _, case, bank_phone, _ = setup
    login_as("supervisor")
    token = csrf_token(f"/cases/{case.cif}")
    response = post(client, token, f"/cases/{case.cif}/contacts/phone", type="MOBILE",
                    number="0933111222")
    assert response.status_code == 403
