"""Reference persons from the case view: add, edit, retire (never deleted), their contacts under
the customer's contact rules (portal/cases/contacts.py with the person as owner), audited; a
bank-synced person is read-only and a person of another customer is not found by guessing ids."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text

from portal.models import AuditLog, Event, Phone, ReferenceCustomer


@pytest.fixture
def setup(db, make_user, ws_case, client, login, csrf_token):
    agent = login(make_user("agent"))
    case = ws_case(agent)
    token = csrf_token(f"/cases/{case.cif}")
    return agent, case, token


def post(client, token, url, **data):
    return client.post(url, data=data, headers={"X-CSRFToken": token, "HX-Request": "true"})


def html(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def add_person(client, token, cif, **data):
    data = {"relationship_type": "spouse", "name": "Trần Thị Bình", **data}
    return post(client, token, f"/cases/{cif}/references", **data)


def person(db, name="Trần Thị Bình") -> ReferenceCustomer:
    db.session.expire_all()
    return db.session.scalar(select(ReferenceCustomer).where(ReferenceCustomer.name == name))


def test_an_agent_adds_a_spouse_who_is_a_crm_row_and_audited(client, db, setup):
    agent, case, token = setup
    response = add_person(client, token, case.cif, national_id="079123456789")
    assert response.status_code == 200, html(response)
    assert response.headers["HX-Trigger"] == "references-updated"
    assert "Trần Thị Bình" in html(response) and "Spouse" in html(response)
    row = person(db)
    assert (row.primary_cif, row.relationship_type, row.source_system, row.retired_at) == \
        (case.cif, "spouse", "CRM", None)
    assert row.ref_cif.startswith("CRM-")
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "reference.create"))
    assert (audit.actor_id, audit.entity_id, audit.after["name"]) == \
        (agent.id, str(row.id), "Trần Thị Bình")


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": "  "}, "name", "Enter the person&#39;s name."),
    ({"relationship_type": "landlord"}, "relationship_type", "Choose a relationship."),
    ({"name": "x" * 201}, "name", "At most 200 characters."),
    ({"national_id": "079-12;3"}, "national_id", "An ID number has only letters and digits."),
])
def test_bad_input_is_refused_next_to_the_field_and_nothing_written(client, db, setup, data,
                                                                    field, message):
    _, case, token = setup
    response = add_person(client, token, case.cif, **data)
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#reference-form-slot"
    assert f'data-error-for="{field}">{message}' in html(response)
    assert db.session.scalar(select(func.count(ReferenceCustomer.id))) == 0
    assert db.session.scalar(select(func.count(AuditLog.id))) == 0


def test_a_persons_phone_follows_the_customers_phone_rules(client, db, setup):
    agent, case, token = setup
    add_person(client, token, case.cif)
    ref = person(db)
    url = f"/cases/{case.cif}/references/{ref.id}/contacts/phone"
    refused = post(client, token, url, type="MOBILE", number="12345")
    customer_refused = post(client, token, f"/cases/{case.cif}/contacts/phone", type="MOBILE",
                            number="12345")
    assert refused.status_code == customer_refused.status_code == 422
    error = re.search(r'data-error-for="number">([^<]+)<', html(refused)).group(1)
    assert error == re.search(r'data-error-for="number">([^<]+)<',
                              html(customer_refused)).group(1)
    assert "0912 345 678" in error
    assert db.session.scalar(select(func.count(Phone.id))) == 0

    saved = post(client, token, url, type="MOBILE", number="+84 933 111 222", is_primary="1")
    assert saved.status_code == 200, html(saved)
    phone = db.session.scalar(select(Phone))
    assert (phone.cif, phone.ref_cif, phone.number, phone.number_e164, phone.source_system) == \
        (None, ref.ref_cif, "0933 111 222", "+84933111222", "CRM")
    # the same number twice for the person: refused, as for a customer
    again = post(client, token, url, type="HOME", number="0933111222")
    assert again.status_code == 422 and "This person already has this phone" in html(again)

    verified = post(client, token, f"{url}/{phone.id}/flags", flag="is_verified", value="1")
    assert verified.status_code == 200 and "Phone marked verified." in html(verified)
    db.session.expire_all()
    phone = db.session.get(Phone, phone.id)
    assert phone.is_verified and phone.verified_by_id == agent.id and phone.verified_at
    [created, flagged] = db.session.scalars(select(Event).where(Event.type == "CONTACT_UPDATED")
                                            .order_by(Event.occurred_at)).all()
    assert created.payload["cif"] == case.cif and created.payload["ref_cif"] == ref.ref_cif
    assert flagged.payload["operation"] == "verified"
    actions = set(db.session.scalars(select(AuditLog.action)))
    assert {"phone.create", "phone.is_verified"} <= actions


def test_a_bank_persons_phone_is_corrected_beside_it(client, db, setup, make_phone):
    _, case, token = setup
    bank = ReferenceCustomer(ref_cif="T24REF0001", primary_cif=case.cif,
                             relationship_type="guarantor", name="Lê Văn Cường",
                             source_system="T24")
    db.session.add(bank)
    db.session.commit()
    bank_phone = Phone(ref_cif=bank.ref_cif, number="0912345678", number_e164="+84912345678",
                       type="MOBILE", source_system="T24")
    db.session.add(bank_phone)
    db.session.commit()
    # the person's own fields are the bank's
    assert client.get(f"/cases/{case.cif}/references/{bank.id}/edit").status_code == 404
    refused = add_person(client, token, case.cif)  # (a CRM person is addable beside)
    assert refused.status_code == 200
    edit = post(client, token, f"/cases/{case.cif}/references/{bank.id}",
                relationship_type="spouse", name="Hacked")
    assert edit.status_code == 422 and "comes from the bank" in html(edit)
    response = post(client, token,
                    f"/cases/{case.cif}/references/{bank.id}/contacts/phone/{bank_phone.id}",
                    type="MOBILE", number="0912345679")
    assert response.status_code == 200 and "Saved as a CRM correction" in html(response)
    db.session.expire_all()
    assert db.session.get(Phone, bank_phone.id).number == "0912345678"
    correction = db.session.scalar(select(Phone).where(Phone.source_system == "CRM"))
    assert (correction.ref_cif, correction.cif, correction.number_e164) == \
        ("T24REF0001", None, "+84912345679")
    assert db.session.get(ReferenceCustomer, bank.id).name == "Lê Văn Cường"


def test_edit_then_retire_keeps_the_row_and_its_contacts(client, db, setup):
    agent, case, token = setup
    add_person(client, token, case.cif)
    ref = person(db)
    post(client, token, f"/cases/{case.cif}/references/{ref.id}/contacts/phone",
         type="MOBILE", number="0933111222")
    unchanged = post(client, token, f"/cases/{case.cif}/references/{ref.id}",
                     relationship_type="spouse", name="Trần  Thị Bình ")
    assert unchanged.status_code == 200 and "Nothing changed." in html(unchanged)
    edited = post(client, token, f"/cases/{case.cif}/references/{ref.id}",
                  relationship_type="co_signer", name="Trần Thị Bình")
    assert edited.status_code == 200
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "reference.update"))
    assert audit.before == {"relationship_type": "spouse"} and \
        audit.after == {"relationship_type": "co_signer"}

    retired = post(client, token, f"/cases/{case.cif}/references/{ref.id}/retire")
    assert retired.status_code == 200
    page = html(retired)
    assert 'data-testid="retired-references"' in page and "Retired persons" in page
    ref = person(db)
    assert ref.retired_at is not None and ref.retired_by_id == agent.id
    assert db.session.scalar(select(func.count(Phone.id)).where(
        Phone.ref_cif == ref.ref_cif)) == 1
    # a retired person's contacts are not edited any more; retiring twice changes nothing
    assert post(client, token, f"/cases/{case.cif}/references/{ref.id}/contacts/phone",
                type="MOBILE", number="0933111333").status_code == 404
    again = post(client, token, f"/cases/{case.cif}/references/{ref.id}/retire")
    assert "Nothing changed." in html(again)
    assert db.session.scalar(select(func.count(AuditLog.id)).where(
        AuditLog.action == "reference.retire")) == 1
    back = post(client, token, f"/cases/{case.cif}/references/{ref.id}/reinstate")
    assert back.status_code == 200 and person(db).retired_at is None


def test_an_id_of_another_customers_person_is_not_found(client, db, setup, make_user, ws_case,
                                                        make_team, login, csrf_token):
    """An agent of team B, on their own customer's URL, with the id of team A's person."""
    agent_a, case_a, token_a = setup
    agent_a.team_id = make_team().id
    db.session.commit()
    add_person(client, token_a, case_a.cif)
    ref = person(db)
    post(client, token_a, f"/cases/{case_a.cif}/references/{ref.id}/contacts/phone",
         type="MOBILE", number="0933111222")
    phone = db.session.scalar(select(Phone))
    intruder = login(make_user("agent", team_id=make_team().id))
    case_b = ws_case(intruder)
    token_b = csrf_token(f"/cases/{case_b.cif}")
    before = db.session.execute(text("SELECT count(*) FROM audit_log")).scalar()
    base = f"/cases/{case_b.cif}/references/{ref.id}"
    for url, data in [(base, {"relationship_type": "spouse", "name": "Hacked"}),
                      (f"{base}/retire", {}),
                      (f"{base}/contacts/phone", {"type": "MOBILE", "number": "0933000111"}),
                      (f"{base}/contacts/phone/{phone.id}", {"type": "MOBILE",
                                                             "number": "0933000111"}),
                      (f"{base}/contacts/phone/{phone.id}/flags", {"flag": "do_not_contact",
                                                                   "value": "1"})]:
        assert post(client, token_b, url, **data).status_code == 404, url
    assert client.get(f"{base}/edit").status_code == 404
    # and team A's customer's own URL is refused outright
    assert post(client, token_b, f"/cases/{case_a.cif}/references/{ref.id}/retire",
                ).status_code in (403, 404)
    db.session.expire_all()
    assert person(db).retired_at is None and person(db).name == "Trần Thị Bình"
    assert db.session.scalar(select(Phone)).do_not_contact is False
    assert db.session.execute(text("SELECT count(*) FROM audit_log")).scalar() == before


def test_a_supervisor_sees_the_panel_without_the_forms(client, db, setup, make_user, login):
    _, case, token = setup
    add_person(client, token, case.cif)
    supervisor = make_user("supervisor")
    db.session.execute(text("UPDATE users SET team_id = NULL"))
    db.session.commit()
    login(supervisor)
    page = html(client.get(f"/cases/{case.cif}"))
    assert "Trần Thị Bình" in page and 'data-testid="add-reference"' not in page
    assert client.get(f"/cases/{case.cif}/references/new").status_code == 403


def test_a_bank_sync_leaves_crm_persons_and_a_retirement_alone(app, client, db, setup):
    """The LOS referee upsert (by ref_cif) renames the bank's person: their retirement stays,
    and the person an agent entered is untouched."""
    import psycopg

    from integrations.changes import ensure_change_table, upsert_changes
    from integrations.los.load import REFERENCE_COLUMNS, _copy, _staging
    from portal import clock
    from tests.integration.sync_helpers import pg_url

    _, case, token = setup
    add_person(client, token, case.cif)
    bank = ReferenceCustomer(ref_cif="LOSREF0001", primary_cif=case.cif,
                             relationship_type="guarantor", name="Lê Văn Cường",
                             source_system="LOS")
    db.session.add(bank)
    db.session.commit()
    assert post(client, token, f"/cases/{case.cif}/references/{bank.id}/retire"
                ).status_code == 200
    crm_before = {k: v for k, v in vars(person(db)).items() if not k.startswith("_")}
    staged = {c: None for c in REFERENCE_COLUMNS} | {
        "ref_cif": "LOSREF0001", "primary_cif": case.cif, "relationship_type": "guarantor",
        "type": "INDIVIDUAL", "name": "Lê Văn Cường (LOS)", "source_system": "LOS"}
    with psycopg.connect(pg_url(app)) as conn:
        ensure_change_table(conn)
        _staging(conn, "stg_test_references", "reference_customers", REFERENCE_COLUMNS)
        _copy(conn, "stg_test_references", REFERENCE_COLUMNS, [staged])
        assert upsert_changes(conn, "reference_customers", "stg_test_references", ("ref_cif",),
                              REFERENCE_COLUMNS, owner="primary_cif", now=clock.now()) == (0, 1)
    db.session.expire_all()
    synced = db.session.get(ReferenceCustomer, bank.id)
    assert synced.name == "Lê Văn Cường (LOS)" and synced.retired_at is not None
    assert {k: v for k, v in vars(person(db)).items() if not k.startswith("_")} == crm_before


def test_a_persons_primary_phone_leaves_the_customers_primary_alone(client, db, setup,
                                                                    make_phone):
    """One primary per type per owner: the person's choice unsets only the person's rows."""
    _, case, token = setup
    customer_phone = make_phone(case.cif, "0912345678", is_primary=True)
    add_person(client, token, case.cif)
    ref = person(db)
    url = f"/cases/{case.cif}/references/{ref.id}/contacts/phone"
    assert post(client, token, url, type="MOBILE", number="0933111222",
                is_primary="1").status_code == 200
    assert post(client, token, url, type="MOBILE", number="0933111333",
                is_primary="1").status_code == 200
    db.session.expire_all()
    primaries = db.session.scalars(select(Phone.number).where(Phone.is_primary)
                                   .order_by(Phone.id)).all()
    assert primaries == [customer_phone.number, "0933 111 333"]
    # the same number as the customer's is the person's own row (owners are apart)
    assert post(client, token, url, type="HOME", number="0912345678").status_code == 200
    assert db.session.scalar(select(func.count(Phone.id)).where(
        Phone.number_e164 == "+84912345678")) == 2
