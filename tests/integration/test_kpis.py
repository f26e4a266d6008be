"""Every KPI definition on a small hand-built scenario; the expected values were worked out by
hand and are written down here (not recomputed with the service's formulas).

Frozen now: Wednesday 2026-11-18 10:00 in Ho Chi Minh City (03:00 UTC).
Month = 1..18 Nov, week = 16..18 Nov, today = 18 Nov.

Agent A (team North):
- calls: 6 on 10 Nov between 09:00 and 11:00 local on 3 customers (2 right-party contacts),
  4 today between 08:00 and 08:30 local on 2 customers (2 right-party contacts)
  -> month 10 attempts, 4 contacts: RPC 40 %; today 4 attempts, 2 contacts: 50 %
- promises: P1 taken 10 Nov (3,000,000, due 12 Nov, kept), P2 taken today (2,000,000, due 25 Nov,
  pending), P3 taken 25 Oct (1,000,000, due 5 Nov, broken), P4 taken 10 Nov but cancelled
  (500,000, due 11 Nov)
  -> month: promises taken 3 (P1, P2, P4) ÷ 4 contacts = 75 %; amount promised 5,500,000
     kept rate: due and resolved in month = P1, P3 -> 1 kept / 2 = 50 %
  -> today: 1 promise ÷ 2 contacts = 50 %; amount 2,000,000; no promise due -> kept rate n/a
- payments on A's customers: 12 Nov 3,000,000 received (allocated 3,000,000 to P1);
  15 Nov 1,000,000 reversed; 30 Oct 500,000 received -> month collected 3,000,000, collected on
  promises 3,000,000; today 0
- cases per hour: 10 Nov 3 customers over 2 h; today 2 customers over 30 min -> counted 1 h
  -> month 5 / 3 h = 1.667; today 2 / 1 h = 2.0
- talk time: 10 Nov answered 120 s + 180 s, one unanswered; today 60 s -> month 360 s, today 60 s
- loans of A's customers (bucket history): L1 1-30 (20 Oct-9 Nov) then current (10 Nov-);
  L2 31-60 (1 Oct-); L3 current (1 Sep-); L4 1-30 (15 Oct-14 Nov) then 31-60 (15 Nov-)
  -> month (from 1 Nov): delinquent L1, L2, L4 = 3, cured L1 -> 33.3 %;
     matrix: current->current 1, 1-30->current 1, 1-30->31-60 1, 31-60->31-60 1
  -> week (from 16 Nov): delinquent L2, L4 = 2, cured 0 -> 0 %
Agent B (team North): 5 calls today, 1 right-party contact -> team North today: 9 attempts,
  3 contacts -> 33.3 %.
Agent C (team South): 3 calls today, all contacts; never shown on North's dashboard.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from portal.kpi import operations as kpis
from portal.models import (
    Action,
    ActionCode,
    CallRecord,
    Case,
    KpiAgentDaily,
    LoanBucketHistory,
    Payment,
    Promise,
    PromiseAllocation,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
_n = itertools.count(1)


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=HCM).astimezone(UTC)


@pytest.fixture
def scenario(db, frozen_now, make_team, make_user, make_customer, make_loan):
    frozen_now(NOW)
    s = db.session
    north, south = make_team(name="North"), make_team(name="South")
    a = make_user("agent", full_name="Agent A", team_id=north.id)
    b = make_user("agent", full_name="Agent B", team_id=north.id)
    c = make_user("agent", full_name="Agent C", team_id=south.id)
    contact = ActionCode(type="CALL", subtype="OUTBOUND", result="PTP", label="Promise",
                         is_contact=True, is_promise=True)
    no_contact = ActionCode(type="CALL", subtype="OUTBOUND", result="NO_ANSWER",
                            label="No answer", is_contact=False)
    s.add_all([contact, no_contact])
    s.flush()

    def customer_of(agent):
        cust = make_customer()
        s.add(Case(cif=cust.cif, assigned_agent_id=agent.id))
        s.commit()
        return cust

    a_customers = [customer_of(a) for _ in range(3)]
    b_customer, c_customer = customer_of(b), customer_of(c)

    def call(agent, cust, at, is_contact):
        code = contact if is_contact else no_contact
        s.add(Action(cif=cust.cif, agent_id=agent.id, action_code_id=code.id, type="CALL",
                     subtype=code.subtype, result=code.result, at=at))

    # agent A, 10 Nov: 6 calls on 3 customers, 09:00..11:00, 2 contacts
    for cust, minute, is_contact in [
        (0, 0, True), (0, 20, False), (1, 40, False), (1, 60, True), (2, 90, False),
        (2, 120, False),
    ]:
        call(a, a_customers[cust], local(10, 9) + timedelta(minutes=minute), is_contact)
    # agent A, today: 4 calls on 2 customers, 08:00..08:30, 2 contacts
    for cust, minute, is_contact in [(0, 0, True), (0, 10, False), (1, 20, True),
                                     (1, 30, False)]:
        call(a, a_customers[cust], local(18, 8) + timedelta(minutes=minute), is_contact)
    # an action of last month and a SYSTEM action: neither counts
    call(a, a_customers[0], local(31, 9, month=10), True)
    s.add(Action(cif=a_customers[0].cif, agent_id=a.id, type="SYSTEM", at=local(18, 8, 5)))
    # agent B today: 5 calls, 1 contact; agent C: 3 contacts
    for i in range(5):
        call(b, b_customer, local(18, 9, i), i == 0)
    for i in range(3):
        call(c, c_customer, local(18, 9, i), True)

    loan = make_loan(customer=a_customers[0], dpd=10)

    def promise(created, amount, due, status):
        p = Promise(cif=a_customers[0].cif, account_number=loan.account_number, agent_id=a.id,
                    amount=Decimal(amount), promised_date=due, status=status)
        s.add(p)
        s.flush()
        p.created_at = created
        return p

    p1 = promise(local(10, 9), 3_000_000, date(2026, 11, 12), "kept")
    promise(local(18, 8), 2_000_000, date(2026, 11, 25), "pending")
    promise(local(25, 9, month=10), 1_000_000, date(2026, 11, 5), "broken")
    promise(local(10, 10), 500_000, date(2026, 11, 11), "cancelled")

    def payment(at, amount, status):
        pay = Payment(reference_number=f"REF{next(_n)}", account_number=loan.account_number,
                      cif=a_customers[0].cif, amount=Decimal(amount), currency="VND",
                      paid_at=at, status=status)
        s.add(pay)
        s.flush()
        return pay

    pay1 = payment(local(12, 14), 3_000_000, "received")
    payment(local(15, 14), 1_000_000, "reversed")
    payment(local(30, 14, month=10), 500_000, "received")
    s.add(PromiseAllocation(promise_id=p1.id, payment_id=pay1.id, amount=Decimal(3_000_000),
                            allocated_at=local(12, 14)))

    def rec(at, seconds, answered=True):
        s.add(CallRecord(call_id=f"C{next(_n)}", agent_id=a.id, cif=a_customers[0].cif,
                         phone="0900000000", direction="outbound", started_at=at,
                         answered_at=at if answered else None,
                         duration_s=seconds))

    rec(local(10, 9), 120)
    rec(local(10, 10), 180)
    rec(local(10, 10, 30), 25, answered=False)
    rec(local(18, 8), 60)

    def history(cust, *stays):
        ln = make_loan(customer=cust, dpd=0)
        for bucket, start, end in stays:
            s.add(LoanBucketHistory(account_number=ln.account_number, bucket=bucket,
                                    from_date=start, to_date=end))
        return ln

    history(a_customers[1], ("1-30", date(2026, 10, 20), date(2026, 11, 9)),
            ("current", date(2026, 11, 10), None))
    history(a_customers[1], ("31-60", date(2026, 10, 1), None))
    history(a_customers[2], ("current", date(2026, 9, 1), None))
    history(a_customers[2], ("1-30", date(2026, 10, 15), date(2026, 11, 14)),
            ("31-60", date(2026, 11, 15), None))
    s.commit()
    return {"north": north, "south": south, "a": a, "b": b, "c": c}


def _agent(board, user):
    return next(r for r in board.agent_rows if r.key == user.id)


def test_month_figures_of_an_agent(db, scenario):
    board = kpis.dashboard(db.session, [scenario["north"].id], "month")
    assert (board.first, board.last) == (date(2026, 11, 1), date(2026, 11, 18))
    v = _agent(board, scenario["a"]).values
    assert v["rpc_rate"] == pytest.approx(0.40)
    assert v["promise_rate"] == pytest.approx(0.75)
    assert v["kept_rate"] == pytest.approx(0.50)
    assert v["promised_amount"] == Decimal("5500000")
    assert v["collected"] == Decimal("3000000")
    assert v["collected_on_promises"] == Decimal("3000000")
    assert v["cases_per_hour"] == pytest.approx(5 / 3)
    assert v["talk_time"] == 360
    assert v["cure_rate"] == pytest.approx(1 / 3)


def test_today_and_week_figures(db, scenario):
    today = kpis.dashboard(db.session, [scenario["north"].id], "today")
    v = _agent(today, scenario["a"]).values
    assert v["rpc_rate"] == pytest.approx(0.50)
    assert v["promise_rate"] == pytest.approx(0.50)
    assert v["kept_rate"] is None
    assert v["promised_amount"] == Decimal("2000000")
    assert v["collected"] == 0
    assert v["cases_per_hour"] == pytest.approx(2.0)
    assert v["talk_time"] == 60
    team = today.team_rows[0]
    assert team.name == "North"
    assert (team.counts["attempts"], team.counts["contacts"]) == (9, 3)
    assert team.values["rpc_rate"] == pytest.approx(3 / 9)
    assert {r.name for r in today.agent_rows} == {"Agent A", "Agent B"}

    week = kpis.dashboard(db.session, [scenario["north"].id], "week")
    assert week.first == date(2026, 11, 16)
    w = _agent(week, scenario["a"])
    assert (w.delinquent_at_start, w.cured) == (2, 0)
    assert w.values["cure_rate"] == 0


def test_roll_rate_matrix(db, scenario):
    board = kpis.dashboard(db.session, [scenario["north"].id], "month")
    m = board.roll
    assert m.counts["current"]["current"] == 1
    assert m.counts["1-30"]["current"] == 1
    assert m.counts["1-30"]["31-60"] == 1
    assert m.counts["31-60"]["31-60"] == 1
    assert sum(sum(row.values()) for row in m.counts.values()) == 4
    assert m.share("1-30", "31-60") == pytest.approx(0.5)
    assert m.roll_forward("1-30") == pytest.approx(0.5)
    assert m.roll_forward("31-60") == 0
    assert m.share("61-90", "90+") is None


def test_stored_daily_aggregates_give_the_same_figures(db, scenario):
    # aggregate the closed days 1..17 Nov, then delete the source rows of 10 Nov: the month's
    # figures must still come out the same (read from kpi_agent_daily), today's live
    written = kpis.aggregate_days(db.session, date(2026, 11, 1), date(2026, 11, 30))
    db.session.commit()
    assert written == 2  # A on 10 Nov (calls, promises), A on 12 Nov (payment); 15 Nov reversed
    days = {(r.agent_id, r.day) for r in db.session.query(KpiAgentDaily)}
    a = scenario["a"].id
    assert days == {(a, date(2026, 11, 10)), (a, date(2026, 11, 12))}
    assert kpis.aggregated_range(db.session) == (date(2026, 11, 1), date(2026, 11, 17))
    db.session.query(Action).filter(Action.at < local(11, 0), Action.at >= local(10, 0)).delete()
    db.session.commit()
    v = _agent(kpis.dashboard(db.session, [scenario["north"].id], "month"),
               scenario["a"]).values
    assert v["rpc_rate"] == pytest.approx(0.40)
    assert v["cases_per_hour"] == pytest.approx(5 / 3)
    assert v["collected"] == Decimal("3000000")
    assert v["talk_time"] == 360


def test_visible_teams_and_csv(db, scenario, make_user):
    supervisor = make_user("supervisor")
    scenario["north"].supervisor_id = supervisor.id
    db.session.commit()
    assert kpis.visible_team_ids(db.session, supervisor) == [scenario["north"].id]
    admin = make_user("admin")
    assert set(kpis.visible_team_ids(db.session, admin)) == {scenario["north"].id,
                                                             scenario["south"].id}
    board = kpis.dashboard(db.session, [scenario["north"].id], "month")
    lines = kpis.to_csv(board).splitlines()
    assert lines[0].startswith("period,from,to,level,team,agent,rpc_rate,promise_rate")
    agent_a = next(line for line in lines if ",Agent A," in line)
    assert ",0.4000,0.7500,0.5000,5500000.00,3000000.00,3000000.00," in agent_a
    assert len(lines) == 1 + 1 + 2 + 1  # header, team, two agents, total


def test_the_issue_example_10_attempts_4_contacts_2_promises_1_kept(db, frozen_now, make_team,
                                                                      make_user, make_customer):
    """10 attempts, 4 contacts, 2 promises, 1 kept (of 2 due) -> 40 %, 50 %, 50 %."""
    frozen_now(NOW)
    team = make_team(name="Example")
    agent = make_user("agent", team_id=team.id)
    yes = ActionCode(type="CALL", subtype="OUT", result="RPC", label="RPC", is_contact=True)
    no = ActionCode(type="CALL", subtype="OUT", result="NA", label="No answer")
    db.session.add_all([yes, no])
    db.session.flush()
    customer = make_customer()
    for i in range(10):
        code = yes if i < 4 else no
        db.session.add(Action(cif=customer.cif, agent_id=agent.id, action_code_id=code.id,
                              type="CALL", at=local(18, 8, i)))
    for status in ("kept", "broken"):
        db.session.add(Promise(cif=customer.cif, agent_id=agent.id, amount=Decimal(1_000_000),
                               promised_date=date(2026, 11, 18), status=status,
                               created_at=local(18, 9)))
    db.session.commit()
    v = kpis.dashboard(db.session, [team.id], "today").agent_rows[0].values
    assert (v["rpc_rate"], v["promise_rate"], v["kept_rate"]) == (0.4, 0.5, 0.5)
