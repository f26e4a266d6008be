"""Realistic rows behind every role's home page (used by the e2e screenshots and the home-page
integration tests). Everything is committed; the ``db`` fixture empties the tables afterwards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from portal import clock
from portal.models import (
    Action,
    Address,
    AgentStatus,
    ApiToken,
    Case,
    Event,
    EventDelivery,
    IntegrationRun,
    IntegrationSetting,
    Promise,
    Visit,
)
from portal.permissions import tokens as api_tokens

CUSTOMERS = [
    ("Nguyen Van Hung", 0), ("Tran Thi Mai", 12), ("Le Van Phuc", 27), ("Pham Thi Hoa", 45),
    ("Hoang Van Nam", 58), ("Vu Thi Lan", 75), ("Dang Van Minh", 88), ("Bui Thi Thu", 120),
    ("Do Van Quang", 200), ("Ngo Thi Huong", 5),
]
STREETS = ["12 Nguyen Hue", "45 Le Loi", "8 Hai Ba Trung", "101 Tran Hung Dao",
           "23 Vo Van Tan", "77 Pasteur"]


@dataclass
class HomeUsers:
    agent: object
    field_agent: object
    supervisor: object
    ops: object
    admin: object
    customers: list


def bank_today():
    return clock.bank_today()


def seed_home_data(db, make_user, make_team, make_customer, make_loan) -> HomeUsers:
    now = clock.now()
    today = bank_today()
    supervisor = make_user(role="supervisor", full_name="Pham Thi Lan", username="lan.pham")
    team = make_team(name="HCMC Team 1", region="Ho Chi Minh City", supervisor_id=supervisor.id)
    agent = make_user(role="agent", full_name="Tran Van An", username="an.tran", team_id=team.id)
    agent2 = make_user(role="agent", full_name="Le Thi Binh", username="binh.le",
                       team_id=team.id)
    field_agent = make_user(role="field_agent", full_name="Vo Minh Duc", username="duc.vo",
                            team_id=team.id)
    ops = make_user(role="ops", full_name="Nguyen Quoc Bao", username="bao.nguyen")
    admin = make_user(role="admin", full_name="Do Thanh Tam", username="tam.do")
    make_user(role="agent", full_name="Former Agent", username="former", active=False)

    customers = []
    for i, (name, dpd) in enumerate(CUSTOMERS):
        customer = make_customer(name=name, cif=f"CIF{100200 + i}")
        loan = make_loan(customer=customer, dpd=dpd,
                         outstanding=Decimal(60_000_000 + i * 7_500_000),
                         due_amount=Decimal(2_500_000 + i * 1_250_000) if dpd else Decimal(0))
        holder = agent if i % 3 != 2 else agent2
        db.session.add(Case(
            cif=customer.cif, assigned_agent_id=holder.id,
            assigned_field_agent_id=field_agent.id if dpd >= 45 else None,
            status="in_progress" if i % 2 else "open", priority=dpd, max_dpd=dpd,
            total_overdue=loan.due_amount, total_outstanding=loan.outstanding,
            next_action_at=now - timedelta(hours=2) if i % 4 == 0 else now + timedelta(days=2),
        ))
        address = Address(cif=customer.cif, type="HOME", line1=STREETS[i % len(STREETS)],
                          district=f"District {i % 7 + 1}", city="Ho Chi Minh City",
                          lat=Decimal("10.7769") + Decimal(i) / 500,
                          lon=Decimal("106.7009") + Decimal(i) / 500, source_system="T24")
        db.session.add(address)
        customers.append((customer, loan, address))
    db.session.flush()

    for j, (customer, loan, _) in enumerate(customers[1:4]):
        db.session.add(Promise(cif=customer.cif, account_number=loan.account_number,
                               agent_id=agent.id, amount=Decimal(3_000_000 + j * 2_000_000),
                               promised_date=today, status="pending",
                               paid_amount=Decimal(1_000_000) if j == 1 else Decimal(0)))
    db.session.add(Promise(cif=customers[4][0].cif, agent_id=agent.id,
                           amount=Decimal(4_000_000), promised_date=today - timedelta(days=3),
                           status="broken"))
    results = [("CALL", "outbound", "promise_to_pay", "Customer will pay on Friday"),
               ("CALL", "outbound", "no_answer", None),
               ("SMS", "reminder", "sent", "Payment reminder"),
               ("CALL", "inbound", "dispute", "Disputes late fee, asked for statement"),
               ("EMAIL", "statement", "sent", None)]
    for k, (kind, subtype, result, notes) in enumerate(results):
        customer = customers[k][0]
        db.session.add(Action(cif=customer.cif, agent_id=agent.id, type=kind, subtype=subtype,
                              result=result, notes=notes, at=now - timedelta(minutes=25 * k + 7),
                              source="manual"))

    for v, (customer, _, address) in enumerate(customers[3:8]):
        status = ["checked_in", "completed", "planned", "planned", "planned"][v]
        db.session.add(Visit(
            cif=customer.cif, agent_id=field_agent.id, address_id=address.id,
            planned_for=today, status=status, planned_by_id=supervisor.id,
            checked_in_at=now - timedelta(hours=1) if status != "planned" else None,
            verification="verified" if status != "planned" else None,
        ))
    for member, status in ((agent, "on_call"), (agent2, "available"), (field_agent, "break")):
        db.session.add(AgentStatus(agent_id=member.id, status=status,
                                   since=now - timedelta(minutes=12), source="cti"))

    for name, enabled, schedule in (("T24", True, "0 2 * * *"), ("W4", True, "30 2 * * *"),
                                    ("LOS", False, "0 3 * * *"), ("PAYMENTS", True, None)):
        db.session.add(IntegrationSetting(integration=name, enabled=enabled, schedule=schedule))
    runs = [("T24", "sync", "succeeded", 12840, 0, 48_200), ("W4", "sync", "partial", 3120, 14,
            9_800), ("PAYMENTS", "reconcile", "failed", 0, 0, 1_200)]
    for name, kind, status, loaded, failed, ms in runs:
        started = now - timedelta(hours=3)
        db.session.add(IntegrationRun(integration=name, kind=kind, trigger="schedule",
                                      status=status, started_at=started,
                                      finished_at=started + timedelta(milliseconds=ms),
                                      extracted=loaded + failed, loaded=loaded, failed=failed,
                                      duration_ms=ms))
    for n in range(3):
        event = Event(id=uuid.uuid4(), type="PAYMENT_RECEIVED", version=1,
                      aggregate_type="loan", aggregate_id=customers[n][1].account_number,
                      payload={"amount": "1000000"}, occurred_at=now - timedelta(minutes=n + 1),
                      relayed_at=None if n else now)
        db.session.add(event)
        db.session.flush()
        db.session.add(EventDelivery(event_id=event.id, subscriber="workflow.payments",
                                     status="dead" if n == 1 else "delivered",
                                     attempts=5 if n == 1 else 1))

    api_tokens.create_token(db.session, name="Phone – Vo Minh Duc",
                            scopes=["api.profile", "api.locations", "api.visits"],
                            user=field_agent, created_by=admin)
    revoked, _ = api_tokens.create_token(db.session, name="Old CTI token",
                                         scopes=["api.calls"], user=None, created_by=admin)
    api_tokens.revoke_token(db.session, revoked, revoked_by=admin)
    api_tokens.create_token(db.session, name="Call centre CTI", scopes=["api.calls"],
                            user=None, created_by=admin)
    agent.last_login_at = now - timedelta(minutes=40)
    supervisor.last_login_at = now - timedelta(hours=3)
    db.session.commit()
    assert db.session.query(ApiToken).count() == 3
    return HomeUsers(agent, field_agent, supervisor, ops, admin, customers)
