"""Issue 19, finding 6: every figure of the KPI dashboard equals the same figure recomputed here
from the raw tables with this file's own SQL (never the product's functions), on the page as
shown and in its CSV export, for today, this week and this month.

The contact rate read 0.0 % for every agent while agents recorded right-party contacts: every
call the call centre reported (a CALL action waiting for the agent's result, no action code)
counted as an attempt, so the dialler's traffic alone pushed the rate towards zero. An attempt
is a call or visit whose result the agent recorded. The scenario also changes things after the
closed days were stored by the aggregation job (a result recorded for a call of 10 Nov, a
payment and an allocation reversed, a case reassigned): the figures must still be true.

Frozen now: Wednesday 2026-11-18 10:00 in Ho Chi Minh City; month 1..18 Nov, week 16..18 Nov.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from portal.assignment import operations as assignment
from portal.calls import operations as calls
from portal.cases.actions import ActionInput
from portal.models import (
    Action,
    ActionCode,
    CallRecord,
    Case,
    LoanBucketHistory,
    Payment,
    Promise,
    PromiseAllocation,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)  # 10:00 bank time
PERIODS = {"today": (date(2026, 11, 18), date(2026, 11, 18)),
           "week": (date(2026, 11, 16), date(2026, 11, 18)),
           "month": (date(2026, 11, 1), date(2026, 11, 18))}
_n = itertools.count(1)


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=HCM).astimezone(UTC)


@pytest.fixture
def office(db, frozen_now, make_team, make_user, make_customer, make_loan):
    """A team (Agent A, Agent B, Field F) whose day has recorded results, calls still waiting
    for theirs, promises, payments, allocations, talk time and bucket history."""
    frozen_now(NOW)
    s = db.session
    supervisor = make_user("supervisor", full_name="Sup North")
    team = make_team(name="North", supervisor_id=supervisor.id)
    a = make_user("agent", full_name="Agent A", team_id=team.id)
    b = make_user("agent", full_name="Agent B", team_id=team.id)
    f = make_user("field_agent", full_name="Field F", team_id=team.id)
    codes = {
        "rpc": ActionCode(type="CALL", subtype="OUTBOUND", result="RPC_REFUSED",
                          label="Reached, refused", is_contact=True),
        "ptp": ActionCode(type="CALL", subtype="OUTBOUND", result="PTP", label="Promise",
                          is_contact=True, is_promise=True),
        "na": ActionCode(type="CALL", subtype="OUTBOUND", result="NO_ANSWER",
                         label="No answer"),
        "visit": ActionCode(type="VISIT", subtype="HOME", result="RPC_REFUSED",
                            label="Visit, refused", is_contact=True),
    }
    s.add_all(codes.values())
    s.flush()
    customers = {}
    for key, holder, field in [("a1", a, None), ("a2", a, None), ("b1", b, f)]:
        customers[key] = make_customer()
        s.add(Case(cif=customers[key].cif, assigned_agent_id=holder.id,
                   assigned_field_agent_id=field.id if field else None))
    s.commit()
    loans = {key: make_loan(customer=c, dpd=20) for key, c in customers.items()}

    def act(agent, key, at, code=None, kind="CALL"):
        s.add(Action(cif=customers[key].cif, agent_id=agent.id, type=kind, at=at,
                     action_code_id=codes[code].id if code else None,
                     subtype=codes[code].subtype if code else "OUTBOUND",
                     result=codes[code].result if code else None,
                     source="manual" if code else "cti"))

    def cti_call(agent, key, at, answered_s=None):
        """A call the call centre reported: its record and its action waiting for a result."""
        action = Action(cif=customers[key].cif, agent_id=agent.id, type="CALL",
                        subtype="OUTBOUND", at=at, source="cti", call_id=f"CTI-{next(_n)}")
        s.add(action)
        s.flush()
        s.add(CallRecord(call_id=action.call_id, agent_id=agent.id, cif=customers[key].cif,
                         phone="+84900000001", direction="outbound",
                         started_at=at - timedelta(seconds=(answered_s or 0) + 20),
                         answered_at=at - timedelta(seconds=answered_s) if answered_s else None,
                         ended_at=at, duration_s=answered_s or 0, action_id=action.id,
                         logged_at=at))
        return action.call_id

    # Agent A, 10 Nov 09:00-11:00: 3 results (1 contact) and a call still waiting for its result
    act(a, "a1", local(10, 9), "rpc")
    act(a, "a1", local(10, 9, 30), "na")
    act(a, "a2", local(10, 11), "na")
    late_call = cti_call(a, "a2", local(10, 10), answered_s=180)
    # Agent A today: 2 results (1 contact), 3 dialler calls with no result yet, a system note
    act(a, "a1", local(18, 8), "rpc")
    act(a, "a2", local(18, 8, 20), "na")
    for minute in (30, 40, 50):
        cti_call(a, "a1", local(18, 8, minute), answered_s=60 if minute == 30 else None)
    s.add(Action(cif=customers["a1"].cif, agent_id=a.id, type="SYSTEM", at=local(18, 8, 5)))
    # Agent B today: a promise taken on a call, a dialler call waiting; Field F: a visit
    act(b, "b1", local(18, 9), "ptp")
    cti_call(b, "b1", local(18, 9, 15), answered_s=45)
    act(f, "b1", local(12, 15), "visit", kind="VISIT")

    def promise(agent, key, created, amount, due, status):
        p = Promise(cif=customers[key].cif, account_number=loans[key].account_number,
                    agent_id=agent.id, amount=Decimal(amount), promised_date=due,
                    status=status)
        s.add(p)
        s.flush()
        p.created_at = created
        return p

    kept = promise(a, "a1", local(10, 9), 3_000_000, date(2026, 11, 12), "kept")
    promise(a, "a1", local(3, 9), 1_000_000, date(2026, 11, 6), "broken")
    promise(b, "b1", local(18, 9), 2_000_000, date(2026, 11, 25), "pending")

    def payment(key, at, amount, status="received"):
        pay = Payment(reference_number=f"REF{next(_n)}", account_number=loans[key].account_number,
                      cif=customers[key].cif, amount=Decimal(amount), currency="VND",
                      paid_at=at, status=status)
        s.add(pay)
        s.flush()
        return pay

    pay_kept = payment("a1", local(12, 14), 3_000_000)
    s.add(PromiseAllocation(promise_id=kept.id, payment_id=pay_kept.id,
                            amount=Decimal(3_000_000), allocated_at=local(12, 14)))
    payment("a2", local(13, 10), 1_500_000)  # a2 is reassigned to B after the aggregation
    to_reverse = payment("b1", local(14, 10), 700_000)
    payment("a1", local(18, 8), 400_000)

    def stays(key, *rows):
        for bucket, start, end in rows:
            s.add(LoanBucketHistory(account_number=loans[key].account_number, bucket=bucket,
                                    from_date=start, to_date=end))

    stays("a1", ("1-30", date(2026, 10, 20), date(2026, 11, 9)),
          ("current", date(2026, 11, 10), None))
    stays("a2", ("1-30", date(2026, 10, 25), None))
    stays("b1", ("1-30", date(2026, 10, 1), date(2026, 10, 30)),
          ("31-60", date(2026, 10, 31), None))
    s.commit()
    return {"supervisor": supervisor, "team": team, "a": a, "b": b, "f": f, "codes": codes,
            "customers": customers, "late_call": late_call, "to_reverse": to_reverse}


def _after_the_closed_days_were_stored(db, office):
    """The aggregation job stores 1..17 Nov; then a result is recorded for the call of 10 Nov,
    a payment is reversed and a case changes hands."""
    from workers.jobs.kpis import aggregate_kpis

    assert aggregate_kpis()["days_to"] == "2026-11-17"
    s = db.session
    calls.record_outcome(s, agent=office["a"], call_id=office["late_call"],
                         data=ActionInput(action_code_id=office["codes"]["rpc"].id))
    s.commit()
    pay = s.get(Payment, office["to_reverse"].id)
    pay.status, pay.reversed_at = "reversed", local(18, 9, 30)
    s.execute(text("UPDATE promise_allocations SET reversed_at = :at"), {"at": local(18, 9, 30)})
    case_id = s.scalar(select(Case.id).where(Case.cif == office["customers"]["a2"].cif))
    assignment.assign_cases(s, office["supervisor"], [(case_id, office["b"].id)], role="agent")
    s.commit()


# --- the figures, recomputed from the raw tables -------------------------------------------


def _recompute(db, agent_id: int, first: date, last: date) -> dict:
    q = db.session.execute
    p = {"a": agent_id, "first": first, "last": last, "tz": "Asia/Ho_Chi_Minh"}
    attempts, contacts = q(text("""
        SELECT count(*), count(*) FILTER (WHERE c.is_contact)
        FROM actions x JOIN action_codes c ON c.id = x.action_code_id
        WHERE x.agent_id = :a AND x.type IN ('CALL', 'VISIT')
          AND (x.at AT TIME ZONE :tz)::date BETWEEN :first AND :last"""), p).one()
    promises, promised = q(text("""
        SELECT count(*), coalesce(sum(amount), 0) FROM promises
        WHERE agent_id = :a AND (created_at AT TIME ZONE :tz)::date BETWEEN :first AND :last"""),
        p).one()
    due, kept = q(text("""
        SELECT count(*), count(*) FILTER (WHERE status = 'kept') FROM promises
        WHERE agent_id = :a AND promised_date BETWEEN :first AND :last
          AND status IN ('kept', 'partially_kept', 'broken')"""), p).one()
    collected = q(text("""
        SELECT coalesce(sum(pay.amount), 0) FROM payments pay JOIN cases k ON k.cif = pay.cif
        WHERE k.assigned_agent_id = :a AND pay.status = 'received'
          AND (pay.paid_at AT TIME ZONE :tz)::date BETWEEN :first AND :last"""), p).scalar()
    on_promises = q(text("""
        SELECT coalesce(sum(pa.amount), 0)
        FROM promise_allocations pa JOIN promises pr ON pr.id = pa.promise_id
        WHERE pr.agent_id = :a AND pa.reversed_at IS NULL
          AND (pa.allocated_at AT TIME ZONE :tz)::date BETWEEN :first AND :last"""), p).scalar()
    worked, seconds = q(text("""
        SELECT coalesce(sum(n), 0), coalesce(sum(greatest(span, 3600)), 0) FROM (
            SELECT count(DISTINCT cif) AS n, extract(epoch FROM max(at) - min(at)) AS span
            FROM actions WHERE agent_id = :a AND type <> 'SYSTEM'
              AND (at AT TIME ZONE :tz)::date BETWEEN :first AND :last
            GROUP BY (at AT TIME ZONE :tz)::date) days"""), p).one()
    talk = q(text("""
        SELECT coalesce(sum(duration_s), 0) FROM call_records
        WHERE agent_id = :a AND answered_at IS NOT NULL
          AND (started_at AT TIME ZONE :tz)::date BETWEEN :first AND :last"""), p).scalar()
    delinquent, cured = q(text("""
        SELECT count(*) FILTER (WHERE s.bucket <> 'current'),
               count(*) FILTER (WHERE s.bucket <> 'current' AND e.bucket = 'current')
        FROM cases k JOIN loans l ON l.cif = k.cif
        JOIN loan_bucket_history s ON s.account_number = l.account_number
             AND :first BETWEEN s.from_date AND coalesce(s.to_date, :first)
        JOIN loan_bucket_history e ON e.account_number = l.account_number
             AND :last BETWEEN e.from_date AND coalesce(e.to_date, :last)
        WHERE k.assigned_agent_id = :a"""), p).one()

    def rate(n, d):
        return None if not d else float(n) / float(d)

    return {"rpc_rate": rate(contacts, attempts), "promise_rate": rate(promises, contacts),
            "kept_rate": rate(kept, due), "promised_amount": Decimal(promised),
            "collected_on_promises": Decimal(on_promises), "collected": Decimal(collected),
            "cure_rate": rate(cured, delinquent),
            "cases_per_hour": rate(worked * 3600, seconds), "talk_time": int(talk),
            "attempts": attempts, "contacts": contacts}


# --- the figures as the page shows them -------------------------------------------------------

HEADINGS = {"RPC rate": "rpc_rate", "Promise rate": "promise_rate", "Kept rate": "kept_rate",
            "Promised": "promised_amount", "On promises": "collected_on_promises",
            "Collected": "collected", "Cure rate": "cure_rate", "Cases / h": "cases_per_hour",
            "Talk time": "talk_time"}
UNITS = {"rpc_rate": "percent", "promise_rate": "percent", "kept_rate": "percent",
         "cure_rate": "percent", "promised_amount": "money", "collected_on_promises": "money",
         "collected": "money", "cases_per_hour": "rate", "talk_time": "duration"}


def shown(value, unit: str) -> str:
    """A figure written as a reader of the dashboard sees it."""
    if unit == "percent":
        return "—" if value is None else f"{100 * value:.1f} %"
    if unit == "rate":
        return "—" if value is None else f"{value:.1f}"
    if unit == "duration":
        return (f"{value // 3600} h {(value % 3600) // 60:02d} min" if value >= 3600
                else f"{value // 60} min {value % 60:02d} s")
    v = float(value or 0)
    if v >= 1e9:
        return f"{v / 1e9:.2f} bn ₫"
    if v >= 1e6:
        return f"{v / 1e6:.1f} M ₫"
    return f"{Decimal(value or 0):,.0f} ₫"


class _Table(HTMLParser):
    """The cell texts of the dashboard's agents table (data-testid="kpi-agents")."""

    def __init__(self):
        super().__init__()
        self.inside = self.cell = False
        self.depth = 0
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        if tag == "div" and ("data-testid", "kpi-agents") in attrs:
            self.inside, self.depth = True, 0
        if not self.inside:
            return
        if tag == "div":
            self.depth += 1
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell, self.text = True, ""
        elif tag == "span" and ("class", "sub") in attrs and self.cell:
            self.text += "\x00"  # a cell's sub line (the role) is not the figure

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag == "div":
            self.depth -= 1
            self.inside = self.depth > 0
        elif tag in ("td", "th") and self.cell:
            self.cell = False
            self.rows[-1].append(" ".join(self.text.split("\x00")[0].split()))

    def handle_data(self, data):
        if self.cell:
            self.text += data


def page_figures(client, period: str) -> dict[str, dict[str, str]]:
    response = client.get(f"/supervisor/kpi/?period={period}")
    assert response.status_code == 200
    table = _Table()
    table.feed(response.get_data(as_text=True))
    headings, *rows = table.rows
    return {row[0]: dict(zip(headings, row, strict=True)) for row in rows if len(row) > 1}


def csv_figures(client, period: str) -> dict[str, dict[str, str]]:
    response = client.get(f"/supervisor/kpi/export.csv?period={period}")
    assert response.status_code == 200
    return {row["agent"]: row for row in csv.DictReader(io.StringIO(response.get_data(
        as_text=True))) if row["level"] == "agent"}


def test_every_kpi_on_the_dashboard_equals_its_recomputation_from_the_raw_tables(
        db, client, login, office):
    _after_the_closed_days_were_stored(db, office)
    login(office["supervisor"])
    for period, (first, last) in PERIODS.items():
        page, export = page_figures(client, period), csv_figures(client, period)
        for agent in (office["a"], office["b"], office["f"]):
            truth = _recompute(db, agent.id, first, last)
            row = page[agent.full_name]
            for heading, key in HEADINGS.items():
                assert row[heading] == shown(truth[key], UNITS[key]), (period, agent.full_name,
                                                                        heading)
            line = export[agent.full_name]
            assert (int(line["attempts"]), int(line["contacts"])) == (
                truth["attempts"], truth["contacts"]), (period, agent.full_name)
            for key in ("promised_amount", "collected", "collected_on_promises"):
                assert Decimal(line[key]) == truth[key], (period, agent.full_name, key)
            assert int(line["talk_time"]) == truth["talk_time"], (period, agent.full_name)


def test_calls_waiting_for_their_result_are_not_attempts_so_the_contact_rate_is_not_zero(
        db, client, login, office):
    """Agent A today: 2 recorded results (1 right-party contact) and 3 dialler calls without a
    result. 1 of 2 attempts, 50.0 %, not 1 of 5 (and with more dialler traffic, 0.0 %)."""
    login(office["supervisor"])
    assert page_figures(client, "today")["Agent A"]["RPC rate"] == "50.0 %"
    line = csv_figures(client, "today")["Agent A"]
    assert (line["attempts"], line["contacts"], line["rpc_rate"]) == ("2", "1", "0.5000")


def test_a_result_recorded_after_its_day_was_stored_counts_on_that_day(db, client, login,
                                                                       office):
    """10 Nov was stored with 3 attempts, 1 contact for Agent A; the call of 10 Nov gets its
    right-party result on the 18th: the month reads 4 + 2 attempts, 2 + 1 contacts."""
    _after_the_closed_days_were_stored(db, office)
    login(office["supervisor"])
    line = csv_figures(client, "month")["Agent A"]
    assert (line["attempts"], line["contacts"]) == ("6", "3")
    assert page_figures(client, "month")["Agent A"]["RPC rate"] == "50.0 %"
