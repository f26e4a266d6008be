"""The audit log viewer (issue 22): filters by user, customer (CIF), kind of change and bank
dates, before/after shown, pages newest first by keyset, CSV export; read only, for admins and
auditors."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest

from portal import audit
from portal.admin import audit_log


@pytest.fixture
def log(db, make_user):
    """Rows at fixed instants (bank time is UTC+7): an admin's changes to a user, a promise on
    CIF00000042, a case assigned, and a row whose actor label looks like a formula."""
    admin = make_user(role="admin", username="quan.tri")
    lan = make_user(role="agent", username="lan.tran")
    other = make_user(role="agent", username="minh.pham")
    rows = [
        (admin, "user.create", "user", lan.id, None, {"username": "lan.tran"},
         datetime(2026, 11, 2, 2, 0, tzinfo=UTC)),  # 09:00 on 2 Nov bank time
        (admin, "user.update", "user", lan.id, {"role": "agent"}, {"role": "field_agent"},
         datetime(2026, 11, 3, 16, 59, tzinfo=UTC)),  # 23:59 on 3 Nov bank time
        (lan, "promise.create", "promise", 7, None, {"cif": "CIF00000042", "amount": "5000000"},
         datetime(2026, 11, 3, 17, 1, tzinfo=UTC)),  # 00:01 on 4 Nov bank time
        (other, "case.assigned", "case", "CIF00000099", {"agent": None}, {"agent": "minh.pham"},
         datetime(2026, 11, 5, 3, 0, tzinfo=UTC)),
        ("=HYPERLINK(\"http://x\")", "settings.update", "app_setting", "limits", None,
         {"max": 3}, datetime(2026, 11, 6, 3, 0, tzinfo=UTC)),
    ]
    for actor, action, entity, entity_id, before, after, at in rows:
        row = audit.record(db.session, actor, action, entity, entity_id, before, after)
        row.at = at
    db.session.commit()
    return {"admin": admin, "lan": lan, "other": other}


def actions_of(db, **filters) -> list[str]:
    page = audit_log.page(db.session, audit_log.AuditFilters(**filters))
    return [row.action for row in page.rows]


def test_filters_by_user_both_what_they_did_and_what_was_done_to_them(db, log):
    assert actions_of(db, user="lan.tran") == ["promise.create", "user.update", "user.create"]
    assert actions_of(db, user="QUAN.TRI") == ["user.update", "user.create"]
    assert actions_of(db, user="nobody") == []


def test_filters_by_customer_kind_and_bank_dates(db, log):
    from datetime import date

    assert actions_of(db, cif="cif00000042") == ["promise.create"]
    assert actions_of(db, cif="CIF00000099") == ["case.assigned"]
    assert actions_of(db, action="user.update") == ["user.update"]
    # 23:59 on 3 Nov bank time is on the 3rd; 00:01 bank time (17:01 UTC) is on the 4th
    assert actions_of(db, date_from=date(2026, 11, 3), date_to=date(2026, 11, 3)) == \
        ["user.update"]
    assert actions_of(db, date_from=date(2026, 11, 4)) == \
        ["settings.update", "case.assigned", "promise.create"]
    assert actions_of(db, user="lan.tran", date_to=date(2026, 11, 2)) == ["user.create"]


def test_a_contact_change_is_found_by_its_customer(db, log, make_customer):
    from portal.models import Phone

    make_customer(cif="CIF00000042")
    phone = Phone(cif="CIF00000042", number="0912345678", number_e164="+84912345678",
                  type="MOBILE", source_system="CRM")
    db.session.add(phone)
    db.session.flush()
    for action, row_id in (("phone.create", phone.id), ("phone.update", phone.id + 1000)):
        row = audit.record(db.session, log["lan"], action, "phone", row_id, None,
                           {"number": "0912345678"})
        row.at = datetime(2026, 11, 7, 3, 0, tzinfo=UTC)
    db.session.commit()
    assert actions_of(db, cif="CIF00000042") == ["phone.create", "promise.create"]


def test_pages_go_newest_first_and_never_repeat_or_skip_a_row(db, log):
    seen, cursor = [], None
    while True:
        page = audit_log.page(db.session, audit_log.AuditFilters(), cursor, size=2)
        seen += [row.action for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["settings.update", "case.assigned", "promise.create", "user.update",
                    "user.create"]
    # a cursor that is not one of ours is the first page, not an error
    assert len(audit_log.page(db.session, audit_log.AuditFilters(), "rubbish").rows) == 5


def test_the_page_shows_before_and_after_and_filters(db, log, client, login_as):
    login_as("auditor")
    response = client.get("/admin/audit?user=lan.tran&action=user.update")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('data-testid="audit-row"') == 1
    assert re.search(r'class="was"><span translate="no">agent</span>', html)
    assert re.search(r'class="now"><span translate="no">field_agent</span>', html)
    assert "quan.tri" in html
    older = client.get("/admin/audit?date_from=2026-11-05&date_to=2026-11-01")
    assert older.status_code == 422
    assert "before the start date" in older.get_data(as_text=True)


def test_the_csv_export_has_the_filtered_rows_in_bank_time_and_no_formulas(db, log, client,
                                                                           login_as):
    login_as("auditor")
    response = client.get("/admin/audit.csv?user=lan.tran")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["action"] for r in rows] == ["promise.create", "user.update", "user.create"]
    assert rows[1]["at"] == "2026-11-03T23:59:00+07:00"
    assert rows[1]["before"] == '{"role": "agent"}'
    assert rows[1]["actor"] == "quan.tri"
    everything = list(csv.DictReader(io.StringIO(
        client.get("/admin/audit.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert len(everything) == 5
    formula = next(r for r in everything if r["action"] == "settings.update")
    assert formula["actor"].startswith("'=")  # a spreadsheet shows it, never runs it


def test_the_auditor_reads_and_changes_nothing(db, log, client, login_as, csrf_token):
    login_as("auditor")
    assert client.get("/").headers["Location"] == "/admin/audit"
    assert client.get("/admin/audit").status_code == 200
    for path in ("/admin/users", "/admin/teams", "/admin/tokens", f"/admin/users/{log['lan'].id}"):
        assert client.get(path).status_code == 403, path
    token = csrf_token("/admin/audit")
    response = client.post(f"/admin/users/{log['lan'].id}/deactivate",
                           data={"csrf_token": token})
    assert response.status_code == 403


@pytest.mark.parametrize("role", ["agent", "field_agent", "supervisor", "ops"])
def test_other_roles_cannot_read_the_audit_log(db, log, client, login_as, role):
    login_as(role)
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit.csv").status_code == 403
