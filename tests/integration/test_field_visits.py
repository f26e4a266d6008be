"""Visits: check-in verification (GPS system first, local rule when it is down), its refusals,
the supervisor's audited review, and the outcome recorded as a VISIT action with a promise."""
# ruff: noqa: F811 - the field fixtures are imported from tests.field_support

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select, text

from integrations.gps import circuit
from tests.field_support import (  # noqa: F401 - fixtures
    HCMC,
    ago,
    field_team,
    gps_sandbox,
    iso,
    make_device_token,
    make_field_agent,
    make_field_customer,
    offset,
)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def planned(db, make_field_agent, make_device_token, make_field_customer):
    """(agent, token, visit) — a visit planned today at a customer living at HCMC."""
    from portal import clock
    from portal.field import visits

    agent = make_field_agent()
    token = make_device_token(agent)
    customer = make_field_customer(agent, *HCMC)

    def plan(who=agent, cif=None):
        visit = visits.plan_visit(db.session, cif=cif or customer.cif, agent_id=who.id,
                                  planned_for=clock.bank_today(), planned_by=who)
        db.session.commit()
        return visit

    return agent, token, plan


def checkin(client, token, visit_id, north_m: float, accuracy: float = 10, **extra):
    lat, lon = offset(*HCMC, north_m)
    return client.post(f"/api/v1/field/visits/{visit_id}/checkin",
                       json={"lat": lat, "lon": lon, "accuracy_m": accuracy, **extra},
                       headers=bearer(token))


def events(db, type_: str) -> list[dict]:
    return [r.payload for r in db.session.execute(text(
        "SELECT payload FROM events WHERE type = :t ORDER BY id"), {"t": type_})]


def test_gps_system_verifies_inside_the_radius(client, db, gps_sandbox, planned):
    agent, token, plan = planned
    visit = plan()
    r = checkin(client, token, visit.id, north_m=120)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["status"] == "checked_in" and body["verification"] == "verified"
    assert body["verification_source"] == "gps"
    assert 115 <= body["distance_m"] <= 125
    assert events(db, "VISIT_CHECKED_IN")[0]["verification"] == "verified"
    assert events(db, "VISIT_VERIFIED")[0]["verification"] == "verified"
    # the check-in is a position of the agent too
    assert db.session.scalar(text("SELECT source FROM agent_locations WHERE agent_id = :a"),
                             {"a": agent.id}) == "checkin"


def test_gps_system_says_outside_the_radius(client, db, gps_sandbox, planned):
    _, token, plan = planned
    body = checkin(client, token, plan().id, north_m=450).get_json()
    assert body["verification"] == "manual_pending" and body["verification_source"] == "gps"
    assert "beyond 200 m" in body["reason"]
    assert events(db, "VISIT_VERIFIED") == []


def test_gps_system_uses_its_own_track(client, db, gps_sandbox, planned):
    """The phone's check-in point is off (urban canyon) but the forwarded track shows the agent
    at the door a few minutes earlier: the GPS system verifies."""
    from integrations.gps import forward
    from integrations.gps.client import GpsClient

    agent, token, plan = planned
    visit = plan()
    lat, lon = offset(*HCMC, 40)
    client.post("/api/v1/field/locations", json={"lat": lat, "lon": lon, "accuracy_m": 6,
                                                 "recorded_at": iso(ago(240))},
                headers=bearer(token))
    forward.forward_pending(db.session, client=GpsClient(gps_sandbox.url, "test-gps-key"))
    body = checkin(client, token, visit.id, north_m=350, accuracy=30).get_json()
    assert body["verification"] == "verified" and body["verification_source"] == "gps"
    assert body["reason"].startswith("track: 40 m")


def test_poor_accuracy_goes_to_manual_review(client, db, gps_sandbox, planned):
    _, token, plan = planned
    body = checkin(client, token, plan().id, north_m=50, accuracy=350).get_json()
    assert body["verification"] == "manual_pending"
    assert "accuracy" in body["reason"]


@pytest.mark.parametrize("north_m, accuracy, expected", [
    (150, 20, "verified"),
    (199, 100, "verified"),
    (260, 20, "manual_pending"),
    (20, 101, "manual_pending"),
])
def test_gps_system_down_the_local_rule_decides(client, db, gps_sandbox, planned, north_m,
                                                accuracy, expected):
    requests.put(f"{gps_sandbox.url}/_sandbox/faults", json={"outage": True}, timeout=5)
    _, token, plan = planned
    body = checkin(client, token, plan().id, north_m=north_m, accuracy=accuracy).get_json()
    assert body["verification"] == expected
    assert body["verification_source"] == "local"


def test_repeated_gps_failures_open_the_circuit(client, db, gps_sandbox, planned,
                                                make_field_customer):
    requests.put(f"{gps_sandbox.url}/_sandbox/faults", json={"outage": True}, timeout=5)
    agent, token, plan = planned
    for _ in range(3):
        customer = make_field_customer(agent, *HCMC)
        checkin(client, token, plan(cif=customer.cif).id, north_m=10)
    assert circuit.is_open()
    served = requests.get(f"{gps_sandbox.url}/_sandbox/faults", timeout=5).json()["served"]
    customer = make_field_customer(agent, *HCMC)
    body = checkin(client, token, plan(cif=customer.cif).id, north_m=10).get_json()
    assert body["verification"] == "verified" and body["verification_source"] == "local"
    after = requests.get(f"{gps_sandbox.url}/_sandbox/faults", timeout=5).json()["served"]
    assert after == served  # not even asked while the circuit is open


def test_no_gps_system_configured_uses_the_local_rule(client, db, planned):
    _, token, plan = planned
    body = checkin(client, token, plan().id, north_m=100).get_json()
    assert body["verification"] == "verified" and body["verification_source"] == "local"


def test_checkin_refusals(client, db, planned, make_field_agent, make_device_token):
    from portal import clock
    from portal.models import Visit

    agent, token, plan = planned
    visit = plan()
    other = make_device_token(make_field_agent())
    r = checkin(client, other, visit.id, north_m=10)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "not_your_visit"
    r = client.post(f"/api/v1/field/visits/{visit.id}/checkin",
                    json={"lat": HCMC[0], "lon": HCMC[1]}, headers=bearer(token))
    assert r.status_code == 422 and "accuracy_m" in r.get_json()["error"]["message"]
    r = checkin(client, token, visit.id, north_m=10, accuracy="far")
    assert r.status_code == 422 and r.get_json()["error"]["fields"] == {
        "accuracy_m": "accuracy_m must be a number."}
    assert client.post("/api/v1/field/visits/999999/checkin", json={},
                       headers=bearer(token)).status_code == 404
    assert checkin(client, token, visit.id, north_m=10).status_code == 200
    r = checkin(client, token, visit.id, north_m=10)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "visit_not_planned"
    tomorrow = Visit(cif=visit.cif, agent_id=agent.id,
                     planned_for=clock.bank_today() + timedelta(days=1))
    db.session.add(tomorrow)
    db.session.commit()
    r = checkin(client, token, tomorrow.id, north_m=10)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "visit_not_today"


def test_supervisor_approves_and_rejects_with_an_audit_trail(client, db, planned, login_as,
                                                             csrf_token, field_team,
                                                             make_field_customer):
    from portal.models import AuditLog, Visit

    agent, token, plan = planned
    first = plan()
    second = plan(cif=make_field_customer(agent, *HCMC).cif)
    assert checkin(client, token, first.id, north_m=800).get_json()["verification"] == \
        "manual_pending"
    assert checkin(client, token, second.id, north_m=50, accuracy=400).get_json()[
        "verification"] == "manual_pending"

    supervisor = login_as("supervisor", team_id=field_team.id)  # the agent's team's
    page = client.get("/field/reviews")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('data-testid="review-row"') == 2 and "799 m" in html
    token_csrf = csrf_token("/field/reviews")
    # a rejection needs a note: the row comes back with the error
    r = client.post(f"/field/reviews/{first.id}", data={"decision": "reject", "note": "",
                                                        "csrf_token": token_csrf},
                    headers={"HX-Request": "true"})
    assert r.status_code == 422 and "Say why" in r.get_data(as_text=True)
    r = client.post(f"/field/reviews/{first.id}",
                    data={"decision": "reject", "note": "Check-in 800 m away, at a café",
                          "csrf_token": token_csrf}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "rejected" in r.get_data(as_text=True)
    r = client.post(f"/field/reviews/{second.id}",
                    data={"decision": "approve", "note": "Photo of the house attached",
                          "csrf_token": token_csrf})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Visit, first.id).verification == "rejected"
    approved = db.session.get(Visit, second.id)
    assert approved.verification == "manual_approved"
    assert approved.reviewer_id == supervisor.id and approved.reviewed_at is not None
    trail = db.session.scalars(select(AuditLog).where(AuditLog.entity_type == "visit")
                               .order_by(AuditLog.id)).all()
    assert [(a.action, a.entity_id, a.actor_id) for a in trail] == [
        ("visit.reject", str(first.id), supervisor.id),
        ("visit.approve", str(second.id), supervisor.id)]
    assert trail[0].before["verification"] == "manual_pending"
    assert trail[0].after == {"verification": "rejected", "reviewer_id": supervisor.id,
                              "review_note": "Check-in 800 m away, at a café",
                              "distance_m": 799.1}
    verified = events(db, "VISIT_VERIFIED")
    assert sorted(e["verification"] for e in verified) == ["manual_approved", "rejected"]
    # a second decision on the same visit is refused
    r = client.post(f"/field/reviews/{second.id}", data={"decision": "reject", "note": "x",
                                                         "csrf_token": token_csrf})
    assert r.status_code == 409
    # a field agent cannot review
    login_as("field_agent")
    assert client.get("/field/reviews").status_code == 403


def test_outcome_is_a_visit_action_with_a_promise(client, db, bank_hours, planned, login,
                                                  ws_action_codes, csrf_token):
    from portal import clock
    from portal.models import Action, Promise, Visit

    agent, token, plan = planned
    visit = plan()
    # no outcome before checking in
    login(agent)
    ptp = ws_action_codes[("VISIT", "HOME", "PTP")]
    form = {"action_code_id": str(ptp.id), "promise_amount": "3,000,000",
            "promise_date": (clock.bank_today() + timedelta(days=5)).isoformat(),
            "notes": "Met the customer, will pay on Friday", "csrf_token": csrf_token(
                "/field/visits")}
    r = client.post(f"/field/visits/{visit.id}/outcome", data=form)
    assert r.status_code == 422 and "Check in" in r.get_data(as_text=True)
    assert checkin(client, token, visit.id, north_m=30).status_code == 200
    # a call result is not a visit outcome; a promise needs its amount
    call = ws_action_codes[("CALL", "OUTBOUND", "PTP")] if ("CALL", "OUTBOUND", "PTP") in \
        ws_action_codes else next(c for k, c in ws_action_codes.items() if k[0] == "CALL")
    r = client.post(f"/field/visits/{visit.id}/outcome", data={**form,
                                                               "action_code_id": str(call.id)})
    assert r.status_code == 422 and "Choose a visit result" in r.get_data(as_text=True)
    r = client.post(f"/field/visits/{visit.id}/outcome", data={**form, "promise_amount": ""})
    assert r.status_code == 422
    r = client.post(f"/field/visits/{visit.id}/outcome", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)
    db.session.expire_all()
    action = db.session.scalar(select(Action).where(Action.visit_id == visit.id))
    assert action.type == "VISIT" and action.result == "PTP" and action.agent_id == agent.id
    assert action.lat is not None and action.notes.startswith("Met the customer")
    promise = db.session.scalar(select(Promise).where(Promise.action_id == action.id))
    assert promise.amount == Decimal("3000000") and promise.status == "pending"
    assert db.session.get(Visit, visit.id).status == "completed"
    page = client.get("/field/visits").get_data(as_text=True)
    assert "Completed" in page


def test_field_agent_page_lists_visits_and_suggestions(client, db, planned, login,
                                                       make_field_customer):
    agent, token, plan = planned
    plan()
    near = make_field_customer(agent, *offset(*HCMC, 600), priority=80, name="Tran Thi Gan")
    client.post("/api/v1/field/locations", json={"lat": HCMC[0], "lon": HCMC[1],
                                                 "accuracy_m": 5, "recorded_at": iso(ago(5))},
                headers=bearer(token))
    login(agent)
    html = client.get("/field/visits").get_data(as_text=True)
    assert html.count('data-testid="visit-item"') == 1
    assert "Tran Thi Gan" in html and 'data-testid="suggestion"' in html
    # adding a suggestion to today's plan
    from tests.conftest import csrf_token_from

    r = client.post("/field/visits/plan", data={"cif": near.cif,
                                               "csrf_token": csrf_token_from(html)})
    assert r.status_code == 302
    html = client.get("/field/visits").get_data(as_text=True)
    assert html.count('data-testid="visit-item"') == 2
    api = client.get("/api/v1/field/visits", headers=bearer(token)).get_json()
    assert len(api["visits"]) == 2 and len(api["route"]["visit_ids"]) == 2


def test_planned_visits_of_past_days_become_missed(db, planned):
    from portal import clock
    from portal.models import Visit
    from workers.jobs.field import mark_missed_visits

    agent, _, plan = planned
    today = plan()
    old = Visit(cif=today.cif, agent_id=agent.id,
                planned_for=clock.bank_today() - timedelta(days=1))
    db.session.add(old)
    db.session.commit()
    assert mark_missed_visits() == {"missed": 1}
    db.session.expire_all()
    assert db.session.get(Visit, old.id).status == "missed"
    assert db.session.get(Visit, today.id).status == "planned"
