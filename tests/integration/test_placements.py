"""Placing a case with the legal team or an external agency (portal/placements): place and
recall from the case view, the case leaving and re-entering the agents' queues, refusals that
write nothing, what each agency collected, the agency's file, the agencies page and the
invariant."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from portal.cases import queue
from portal.models import Agency, AuditLog, Case, Placement, Team
from portal.ops import invariants
from portal.placements import operations
from tests.conftest import csrf_token_from

NOW = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)  # 10:30 in Hà Nội, a Tuesday
TODAY = date(2026, 11, 24)


def post(client, url: str, data: dict | None = None, **kwargs):
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kwargs)


def error_for(html: str, name: str) -> str | None:
    match = re.search(rf'data-error-for="{name}">([^<]*)<', html)
    return match.group(1) if match else None


def written(db) -> tuple:
    """What a refused request must leave as it was."""
    return (db.session.scalar(select(func.count()).select_from(Placement)),
            db.session.scalar(select(func.count()).select_from(AuditLog)),
            db.session.scalar(select(func.count()).select_from(Placement)
                              .where(Placement.status == "active")))


@pytest.fixture
def office(db, make_user, ws_case, frozen_now):
    """Team A (an agent and its supervisor), team B's supervisor, a case of team A's agent,
    the legal team and an agency."""
    frozen_now(NOW)
    team_a, team_b = Team(name="Đội A"), Team(name="Đội B")
    db.session.add_all([team_a, team_b])
    db.session.commit()
    agent = make_user("agent", team_id=team_a.id, language="vi")
    sup = make_user("supervisor", team_id=team_a.id, full_name="Lê Văn Giám", language="vi")
    sup_b = make_user("supervisor", team_id=team_b.id, language="vi")
    team_a.supervisor_id, team_b.supervisor_id = sup.id, sup_b.id
    legal = Agency(code="LEGAL", name="Phòng Pháp chế", kind="legal")
    agency = Agency(code="ABC", name="Công ty Thu hồi nợ ABC", kind="agency",
                    contact="028 3838 0000")
    db.session.add_all([legal, agency])
    db.session.commit()
    case = ws_case(agent, dpd=95, overdue="18500000")
    case.locked_by_id, case.locked_until = agent.id, NOW + timedelta(minutes=5)
    db.session.commit()
    return {"agent": agent, "sup": sup, "sup_b": sup_b, "legal": legal, "agency": agency,
            "case": case, "team_a": team_a}


def in_queue(db, agent, case) -> bool:
    page = queue.queue_page(db.session, agent.id, queue.QueueFilters(), NOW, with_counts=False)
    counts = queue.queue_counts(db.session, agent.id, NOW)
    assert counts.total == page.total  # the counts and the page agree
    # and the agent's open cases on the home page and in the assignment load (one definition)
    assert queue.held_counts(db.session, [agent.id])[agent.id][0] == page.total
    return case.id in {r.case.id for r in page.rows}


def test_a_supervisor_places_a_case_it_leaves_the_queue_and_a_recall_brings_it_back(
        db, client, login, office):
    case, agent, sup, agency = office["case"], office["agent"], office["sup"], office["agency"]
    assert in_queue(db, agent, case)
    login(sup)
    card = client.get(f"/placements/cases/{case.cif}/card").get_data(as_text=True)
    assert 'data-testid="place-case"' in card and "placement-banner" not in card

    response = post(client, f"/placements/cases/{case.cif}/place",
                    {"agency_id": agency.id, "expected_return_on": "2027-02-24",
                     "reason": "KH không hợp tác sau 5 lần hẹn"},
                    headers={"HX-Request": "true", "X-Request-ID": "req-place-1"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["HX-Trigger"] == "case-updated"
    html = response.get_data(as_text=True)
    assert "Đã chuyển cho Công ty Thu hồi nợ ABC" in html
    db.session.expire_all()
    placement = db.session.scalar(select(Placement))
    assert (placement.status, placement.placed_on, placement.expected_return_on,
            placement.amount, placement.placed_by_id) == (
        "active", TODAY, date(2027, 2, 24), case.total_outstanding, sup.id)
    assert placement.amount == Decimal("80000000")  # the outstanding, not the overdue
    row = db.session.scalar(select(AuditLog).where(AuditLog.action == "placement.placed"))
    assert row.entity_id == case.cif and row.after["agency"] == "ABC"
    assert row.correlation_id == "req-place-1"

    # out of the agent's queue, its counts and Next case; the lock released; still held
    case = db.session.get(Case, case.id)
    assert case.locked_by_id is None and case.assigned_agent_id == agent.id
    assert not in_queue(db, agent, case)
    assert queue.next_case(db.session, agent, NOW) is None
    assert invariants.placements.violations(db.session, NOW) == []
    # the agent sees the banner on the case, and no button
    login(agent)
    card = client.get(f"/placements/cases/{case.cif}/card").get_data(as_text=True)
    assert "Đã chuyển cho Công ty Thu hồi nợ ABC" in card and "place-case" not in card
    assert client.post(f"/placements/cases/{case.cif}/place").status_code in (400, 403)

    login(sup)
    response = post(client, f"/placements/cases/{case.cif}/recall",
                    {"placement_id": placement.id, "outcome": "recalled",
                     "end_reason": "Ngân hàng tự xử lý"}, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.get_data(as_text=True)
    db.session.expire_all()
    placement = db.session.get(Placement, placement.id)
    assert (placement.status, placement.ended_at, placement.ended_by_id) == (
        "recalled", NOW, sup.id)
    assert db.session.scalar(select(AuditLog.after).where(
        AuditLog.action == "placement.recalled"))["status"] == "recalled"
    assert in_queue(db, agent, case)
    assert queue.next_case(db.session, agent, NOW).id == case.id


def test_refusals_write_nothing(db, client, login, office):
    case, sup, agency, legal = office["case"], office["sup"], office["agency"], office["legal"]
    login(sup)
    url = f"/placements/cases/{case.cif}/place"
    good = {"agency_id": agency.id, "expected_return_on": "2027-01-01", "reason": "Khởi kiện"}
    before = written(db)
    # the expected return before the placement date; no reason; no agency; a bad date
    for data, field in [({**good, "expected_return_on": "2026-11-23"}, "expected_return_on"),
                        ({**good, "reason": "  "}, "reason"),
                        ({**good, "agency_id": ""}, "agency_id"),
                        ({**good, "expected_return_on": "24/13/2026"}, "expected_return_on")]:
        response = post(client, url, data, headers={"HX-Request": "true"})
        assert response.status_code == 422
        assert response.headers["HX-Retarget"] == "#placement-form-slot"
        assert error_for(response.get_data(as_text=True), field), field
    assert error_for(post(client, url, {**good, "expected_return_on": "2026-11-23"}).get_data(
        as_text=True), "expected_return_on") == \
        "Ngày dự kiến trả lại không thể trước ngày chuyển (24/11/2026)."
    # a retired agency
    agency.active = False
    db.session.commit()
    response = post(client, url, good)
    assert response.status_code == 422 and error_for(response.get_data(as_text=True),
                                                     "agency_id")
    assert written(db) == before

    # placed once; placing again is refused, naming the agency
    assert post(client, url, {**good, "agency_id": legal.id}).status_code == 200
    placed = written(db)
    response = post(client, url, {**good, "agency_id": legal.id})
    assert response.status_code == 409
    assert "Phòng Pháp chế" in response.get_data(as_text=True)
    assert written(db) == placed
    # the database refuses a second active placement whatever the code does
    with pytest.raises(IntegrityError):
        db.session.execute(text(
            "INSERT INTO placements (case_id, agency_id, placed_on, placed_at, "
            "expected_return_on, amount, reason) SELECT case_id, agency_id, placed_on, "
            "placed_at, expected_return_on, amount, reason FROM placements"))
    db.session.rollback()

    # recalling a placement that is not the active one (a stale form) is refused
    active = db.session.scalar(select(Placement).where(Placement.status == "active"))
    response = post(client, f"/placements/cases/{case.cif}/recall",
                    {"placement_id": active.id + 1000, "end_reason": "x"})
    assert response.status_code == 409
    assert "không còn hiệu lực" in response.get_data(as_text=True)
    response = post(client, f"/placements/cases/{case.cif}/recall",
                    {"placement_id": active.id, "end_reason": ""})
    assert response.status_code == 422 and error_for(response.get_data(as_text=True),
                                                     "end_reason")
    assert written(db) == placed

    # another team's supervisor: the route hides the case, the operation refuses it
    login(office["sup_b"])
    assert post(client, f"/placements/cases/{case.cif}/recall",
                {"placement_id": active.id, "end_reason": "x"}).status_code == 404
    with pytest.raises(operations.PlacementError) as refused:
        operations.end(db.session, office["sup_b"], case, active.id, "recalled", "x", NOW)
    assert refused.value.status == 403
    db.session.rollback()
    assert written(db) == placed


def test_collected_per_agency_counts_the_payments_received_while_placed(
        db, client, login, office, make_payment, frozen_now):
    case, sup, agency, legal = office["case"], office["sup"], office["agency"], office["legal"]
    loan = case.loan
    make_payment(loan, "1000000", paid_at=NOW - timedelta(days=1))  # before: not counted
    first = operations.place(db.session, sup, case, agency.id, TODAY + timedelta(days=30),
                             "Chuyển đối tác", NOW)
    db.session.commit()
    make_payment(loan, "2000000", paid_at=NOW + timedelta(days=2))
    make_payment(loan, "700000", paid_at=NOW + timedelta(days=3), status="reversed",
                 reversed_at=NOW + timedelta(days=4))  # reversed: not counted
    operations.end(db.session, sup, case, first.id, "returned", "Đối tác trả lại",
                   NOW + timedelta(days=10))
    db.session.commit()
    make_payment(loan, "4000000", paid_at=NOW + timedelta(days=11))  # between: not counted
    operations.place(db.session, sup, case, legal.id, TODAY + timedelta(days=90),
                     "Khởi kiện", NOW + timedelta(days=12))
    db.session.commit()
    make_payment(loan, "8000000", paid_at=NOW + timedelta(days=20))

    figures = {f.agency.code: f for f in operations.collected_by_agency(db.session)}
    assert (figures["ABC"].collected, figures["ABC"].active, figures["ABC"].placed) == (
        Decimal("2000000"), 0, 1)
    assert (figures["LEGAL"].collected, figures["LEGAL"].active) == (Decimal("8000000"), 1)
    assert figures["LEGAL"].amount_active == Decimal("80000000")
    assert invariants.placements.violations(db.session, NOW) == []

    frozen_now(NOW + timedelta(days=21))
    login(sup)
    page = client.get("/placements/").get_data(as_text=True)
    assert 'data-testid="chart-collected-by-agency"' in page
    assert re.search(r'data-testid="collected-LEGAL">8\.000\.000', page), page
    assert f'data-testid="placed-{case.cif}"' in page
    # another team's supervisor sees none of it
    login(office["sup_b"])
    page = client.get("/placements/").get_data(as_text=True)
    assert f'placed-{case.cif}' not in page and 'data-testid="collected-LEGAL">0' in page


def test_the_placement_file_is_utf8_with_bom_and_audited(db, client, login, office,
                                                          make_phone):
    case, sup, agency = office["case"], office["sup"], office["agency"]
    case.customer.name = "Nguyễn Thị Hằng"
    make_phone(case.cif, "0912345678", is_primary=True)
    make_phone(case.cif, "0987654321", do_not_contact=True)
    operations.place(db.session, sup, case, agency.id, TODAY + timedelta(days=60), "x", NOW)
    db.session.commit()
    login(sup)
    response = client.get(f"/placements/file.csv?agency={agency.id}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == \
        'attachment; filename="placements-ABC-2026-11-24.csv"'
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 1
    row = rows[0]
    assert (row["cif"], row["name"], row["phones"], row["dpd"], row["placed_on"],
            row["expected_return_on"]) == (case.cif, "Nguyễn Thị Hằng", "+84912345678", "95",
                                           "2026-11-24", "2027-01-23")
    assert row["accounts"] == case.loan.account_number and row["overdue"] == "18500000.00"
    audit_row = db.session.scalar(select(AuditLog).where(
        AuditLog.action == "placement.file_exported"))
    assert audit_row.after["rows"] == 1 and audit_row.after["cifs"] == [case.cif]
    # another team's supervisor gets the agency's file without team A's case
    login(office["sup_b"])
    rows = list(csv.DictReader(io.StringIO(client.get(
        f"/placements/file.csv?agency={agency.id}").get_data().decode("utf-8-sig"))))
    assert rows == []
    assert client.get("/placements/file.csv?agency=99999").status_code == 404


def test_the_invariant_catches_a_locked_placed_case_and_overlapping_windows(
        db, office, make_payment):
    case, sup, agency = office["case"], office["sup"], office["agency"]
    placement = operations.place(db.session, sup, case, agency.id, TODAY, "x", NOW)
    db.session.commit()
    make_payment(case.loan, "3000000", paid_at=NOW + timedelta(hours=1))
    assert invariants.placements.violations(db.session, NOW) == []
    # an agent holding a lock on a placed case
    case.locked_by_id, case.locked_until = office["agent"].id, NOW + timedelta(minutes=10)
    db.session.commit()
    problems = {v["problem"] for v in invariants.placements.violations(db.session, NOW)}
    assert problems == {"placed case locked by an agent"}
    case.locked_by_id, case.locked_until = None, None
    # an earlier placement whose window overlaps the active one: the payment counts twice
    db.session.add(Placement(case_id=case.id, agency_id=agency.id, status="returned",
                             placed_on=TODAY, placed_at=NOW - timedelta(days=1),
                             ended_at=NOW + timedelta(days=1), expected_return_on=TODAY,
                             amount=0, reason="x"))
    db.session.commit()
    problems = {v["problem"] for v in invariants.placements.violations(db.session, NOW)}
    assert problems == {"placement windows overlap", "collected is not the sum of its payments"}
    results = {r.name: r for r in invariants.check_all(db.session, now=NOW)}
    assert results["placements"].violations == 2
    assert placement.status == "active"


def test_admins_add_and_retire_agencies(db, client, login, make_user):
    admin = make_user("admin", language="vi")
    login(admin)
    page = client.get("/placements/agencies")
    assert page.status_code == 200
    response = post(client, "/placements/agencies", {"code": "x y", "name": "", "kind": "bank"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert error_for(html, "code") and error_for(html, "name") and error_for(html, "kind")
    assert db.session.scalar(select(func.count()).select_from(Agency)) == 0
    response = post(client, "/placements/agencies",
                    {"code": "vamc", "name": "Công ty VAMC", "kind": "agency"})
    assert response.status_code == 302
    agency = db.session.scalar(select(Agency))
    assert (agency.code, agency.active) == ("VAMC", True)
    response = post(client, "/placements/agencies",
                    {"code": "VAMC", "name": "Trùng", "kind": "agency"})
    assert response.status_code == 422 and error_for(response.get_data(as_text=True), "code")
    assert post(client, f"/placements/agencies/{agency.id}/toggle").status_code == 302
    db.session.expire_all()
    assert db.session.get(Agency, agency.id).active is False
    actions = db.session.scalars(select(AuditLog.action).where(
        AuditLog.entity_type == "agency").order_by(AuditLog.id)).all()
    assert actions == ["agency.created", "agency.updated"]
