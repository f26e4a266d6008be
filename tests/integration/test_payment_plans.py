"""Payment plans (issue 22, case management 6): a plan covers the overdue amount within the
admin's limits; payments keep its instalments through the one FIFO allocation (promises first,
then the plan); the hourly job misses instalments and breaks plans by the bank's date; the
queue filters by plan, the KPIs count the plan kept rate, and the invariant holds (and catches
a plan that lies)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from werkzeug.datastructures import MultiDict

from portal.cases import plans
from portal.cases.contact_rules import MessageRules, PlanRules, get_plan_rules, save_plan_rules
from portal.cases.promises import PromiseValidationError, create_promise
from portal.cases.queue import QueueFilters, queue_page
from portal.kpi.operations import dashboard
from portal.models import (
    Action,
    AuditLog,
    Case,
    PaymentPlan,
    PlanAllocation,
    Promise,
)
from portal.ops.invariants import check_all
from portal.payments.effects import sync_payment
from tests.conftest import csrf_token_from
from workers.jobs.promises import run_broken_promises

NOW = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)  # 10:30 on the 24th in Ho Chi Minh City
TODAY = date(2026, 11, 24)
DATES = (date(2026, 12, 1), date(2026, 12, 15), date(2026, 12, 29))


def rows(*pairs) -> list[plans.InstalmentInput]:
    return [plans.InstalmentInput(d.isoformat() if isinstance(d, date) else d, a)
            for d, a in pairs]


THREE = rows((DATES[0], "3.000.000"), (DATES[1], "3.000.000"), (DATES[2], "3.000.000"))


@pytest.fixture
def debtor(db, make_user, make_team, ws_case, frozen_now):
    frozen_now(NOW)
    team = make_team()
    agent = make_user("agent", full_name="Trần Thị Thu", team_id=team.id)
    case = ws_case(agent, dpd=45, overdue="9000000")
    return agent, case


def new_plan(db, agent, case, instalments=THREE, reason="KH đồng ý trả 3 kỳ"):
    plan = plans.create_plan(db.session, agent, cif=case.cif, rows=instalments, reason=reason,
                             today=TODAY)
    db.session.commit()
    return plan


def pay(db, make_payment, case, amount, at=NOW, **kwargs):
    payment = make_payment(case.loan, amount, paid_at=at, **kwargs)
    sync_payment(db.session, payment.id)  # what the PAYMENT_RECEIVED subscriber does
    db.session.commit()
    return payment


def instalments(db, plan) -> list[tuple[str, Decimal]]:
    db.session.expire_all()
    return [(i.status, i.paid_amount) for i in db.session.get(PaymentPlan, plan.id).instalments]


def status(db, plan) -> str:
    db.session.expire_all()  # the job commits in its own session
    return db.session.get(PaymentPlan, plan.id).status


def plan_violations(db, when=NOW) -> list[dict]:
    return plans.violations(db.session, when)


# -- recording a plan ---------------------------------------------------------------------------


def test_a_plan_covering_the_overdue_is_active_and_cancels_the_open_promise(
        db, debtor, make_promise):
    agent, case = debtor
    promise = make_promise(case.customer, "2000000", TODAY + timedelta(days=3), loan=case.loan,
                           agent=agent)
    plan = new_plan(db, agent, case)
    assert (plan.status, plan.total, plan.break_after_missed) == ("active", Decimal(9000000), 1)
    assert [(i.seq, i.due_date, i.amount, i.status) for i in plan.instalments] == [
        (n, d, Decimal(3000000), "pending") for n, d in enumerate(DATES, start=1)]
    assert db.session.get(Promise, promise.id).status == "cancelled"
    actions = {a.action for a in db.session.scalars(select(AuditLog))}
    assert {"plan.create", "promise.cancel"} <= actions
    note = db.session.scalar(select(Action.notes).where(Action.subtype == "PLAN"))
    assert "39000000" in re.sub(r"\D", "", note)  # 3 instalments, 9.000.000 ₫
    # while it is active, a promise is refused: one arrangement at a time
    with pytest.raises(PromiseValidationError) as info:
        create_promise(db.session, agent_id=agent.id, cif=case.cif, account_number=None,
                       amount=Decimal("1000000"), promised_date=TODAY, action_id=None,
                       today=TODAY)
    assert "payment plan" in info.value.errors["promised_date"]
    db.session.rollback()
    # and a second plan too
    with pytest.raises(plans.PlanValidationError) as info:
        new_plan(db, agent, case)
    assert "already has an active plan" in info.value.errors["instalments"]
    assert plan_violations(db) == []


@pytest.mark.parametrize(("instalments", "field", "words"), [
    (rows((DATES[0], "3.000.000"), (DATES[1], "3.000.000"), (DATES[2], "2.000.000")),
     "instalments", "1,000,000\xa0₫ short of the overdue amount"),
    (rows((DATES[0], "3.000.000"), (DATES[1], "3.000.000"), (DATES[2], "4.000.000")),
     "instalments", "more than the overdue amount"),
    (rows((TODAY - timedelta(days=1), "3.000.000"), (DATES[1], "3.000.000"),
          (DATES[2], "3.000.000")), "due_date-1", "in the past"),
    (rows((DATES[0], "3.000.000"), (DATES[2], "3.000.000"), (DATES[1], "3.000.000")),
     "due_date-3", "after the one before"),
    (rows((DATES[0], "3.000.000"), (DATES[0], "3.000.000"), (DATES[2], "3.000.000")),
     "due_date-2", "after the one before"),
    (rows((TODAY + timedelta(days=31), "3.000.000"), (DATES[1] + timedelta(days=30), "3.000.000"),
          (DATES[2] + timedelta(days=30), "3.000.000")), "due_date-1", "within 30 days"),
    (rows((DATES[0], "3.000.000"), (DATES[1], "3.000.000"),
          (TODAY + timedelta(days=366), "3.000.000")), "due_date-3", "at most 365 days"),
    (rows((DATES[0], "0"), (DATES[1], "3.000.000"), (DATES[2], "6.000.000")),
     "amount-1", "greater than zero"),
    (rows((DATES[0], "-3.000.000"), (DATES[1], "3.000.000"), (DATES[2], "3.000.000")),
     "amount-1", "cannot be negative"),
    (rows((DATES[0], "3,000.5"), (DATES[1], "3.000.000"), (DATES[2], "3.000.000")),
     "amount-1", ""),
    (rows((DATES[0], "50.000"), (DATES[1], "3.000.000"), (DATES[2], "5.950.000")),
     "amount-1", "at least 100,000\xa0₫"),
    (rows((DATES[0], ""), (DATES[1], "3.000.000"), (DATES[2], "3.000.000")),
     "amount-1", "Enter the amount"),
    (rows(("2026-02-30", "3.000.000"), (DATES[1], "3.000.000"), (DATES[2], "3.000.000")),
     "due_date-1", "YYYY-MM-DD"),
    (rows((DATES[0], "9.000.000")), "instalments", "from 2 to 12 instalments"),
    (rows(*[(TODAY + timedelta(days=7 + 7 * n), "600.000") for n in range(15)]),
     "instalments", "from 2 to 12 instalments"),
])
def test_a_plan_outside_the_rules_is_refused_next_to_the_field_and_nothing_is_written(
        db, debtor, instalments, field, words):
    agent, case = debtor
    with pytest.raises(plans.PlanValidationError) as info:
        plans.create_plan(db.session, agent, cif=case.cif, rows=instalments, reason=None,
                          today=TODAY)
    db.session.rollback()
    assert field in info.value.errors, info.value.errors
    assert words in info.value.errors[field]
    assert db.session.scalar(select(func.count(PaymentPlan.id))) == 0
    assert db.session.scalar(select(func.count(AuditLog.id))) == 0


def test_the_admins_limits_apply(db, debtor, make_user):
    agent, case = debtor
    admin = make_user("admin")
    save_plan_rules(db.session, PlanRules(min_instalments=2, max_instalments=2, max_days=20,
                                          first_within_days=5, min_amount=1_000_000,
                                          break_after_missed=2), admin)
    db.session.commit()
    with pytest.raises(plans.PlanValidationError) as info:
        plans.create_plan(db.session, agent, cif=case.cif, rows=THREE, reason=None, today=TODAY)
    assert "from 2 to 2 instalments" in info.value.errors["instalments"]
    db.session.rollback()
    two = rows((TODAY + timedelta(days=6), "4.500.000"), (TODAY + timedelta(days=21), "4.500.000"))
    with pytest.raises(plans.PlanValidationError) as info:
        plans.create_plan(db.session, agent, cif=case.cif, rows=two, reason=None, today=TODAY)
    assert "within 5 days" in info.value.errors["due_date-1"]
    assert "at most 20 days" in info.value.errors["due_date-2"]
    db.session.rollback()
    plan = new_plan(db, agent, case, rows((TODAY + timedelta(days=5), "4.500.000"),
                                          (TODAY + timedelta(days=20), "4.500.000")))
    assert plan.break_after_missed == 2  # the setting when the plan was made
    assert db.session.scalar(select(AuditLog.action).where(
        AuditLog.entity_id == "plan_rules")) == "settings.update"


# -- payments and the judging job ---------------------------------------------------------------


def test_payments_keep_instalments_in_order_and_complete_the_plan(db, debtor, make_payment):
    agent, case = debtor
    plan = new_plan(db, agent, case)
    pay(db, make_payment, case, "3000000")
    assert instalments(db, plan) == [("kept", Decimal(3000000)), ("pending", 0), ("pending", 0)]
    pay(db, make_payment, case, "4000000")  # instalment 2 in full, 1.000.000 on the third
    assert instalments(db, plan) == [("kept", Decimal(3000000)), ("kept", Decimal(3000000)),
                                     ("part", Decimal(1000000))]
    assert plan_violations(db) == []
    last = pay(db, make_payment, case, "2500000")  # 500.000 more than the plan: left over
    assert instalments(db, plan)[2] == ("kept", Decimal(3000000))
    assert status(db, plan) == "completed"
    assert db.session.scalar(select(func.sum(PlanAllocation.amount)).where(
        PlanAllocation.payment_id == last.id)) == Decimal(2000000)
    assert plan_violations(db) == []

    # the last payment reversed: the plan is active again, instalment 3 back to part
    last.status = "reversed"
    db.session.commit()
    sync_payment(db.session, last.id)
    db.session.commit()
    assert instalments(db, plan)[2] == ("part", Decimal(1000000))
    assert status(db, plan) == "active"
    assert plan_violations(db) == []


def test_a_missed_instalment_breaks_the_plan_on_the_next_bank_day(db, debtor, make_payment,
                                                                  frozen_now):
    agent, case = debtor
    plan = new_plan(db, agent, case)
    pay(db, make_payment, case, "3000000")
    # the evening of instalment 2's date, bank time: nothing is judged yet
    frozen_now(datetime(2026, 12, 15, 16, 59, tzinfo=UTC))  # 23:59 on the 15th in HCMC
    assert run_broken_promises()["plans_broken"] == 0
    assert status(db, plan) == "active"
    # 23:30 UTC on the 15th is already the 16th in the bank
    frozen_now(datetime(2026, 12, 15, 23, 30, tzinfo=UTC))
    result = run_broken_promises()
    assert (result["business_date"], result["instalments_missed"],
            result["plans_broken"]) == ("2026-12-16", 1, 1)
    assert instalments(db, plan) == [("kept", Decimal(3000000)), ("missed", 0), ("pending", 0)]
    assert status(db, plan) == "broken"
    assert db.session.scalar(select(Action.result).where(
        Action.subtype == "PLAN").order_by(Action.id.desc())) == "BROKEN"
    assert db.session.get(Case, case.id).next_action_at == datetime(2026, 12, 15, 23, 30,
                                                                    tzinfo=UTC)
    assert run_broken_promises()["plans_broken"] == 0  # once
    assert plan_violations(db, datetime(2026, 12, 15, 23, 30, tzinfo=UTC)) == []
    # a broken plan takes no more money
    pay(db, make_payment, case, "3000000", at=datetime(2026, 12, 15, 23, 40, tzinfo=UTC))
    assert instalments(db, plan)[1] == ("missed", 0)


def test_with_two_misses_allowed_one_miss_does_not_break_it(db, debtor, make_user,
                                                           make_payment, frozen_now):
    agent, case = debtor
    save_plan_rules(db.session, PlanRules(break_after_missed=2), make_user("admin"))
    db.session.commit()
    plan = new_plan(db, agent, case)
    frozen_now(datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
    assert run_broken_promises()["instalments_missed"] == 1
    assert status(db, plan) == "active"
    # the customer catches up late: the missed instalment stays missed, the money is its own
    pay(db, make_payment, case, "3000000", at=datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
    assert instalments(db, plan)[0] == ("missed", Decimal(3000000))
    frozen_now(datetime(2026, 12, 16, 3, 0, tzinfo=UTC))
    assert run_broken_promises()["plans_broken"] == 1
    assert status(db, plan) == "broken"


def test_promises_come_first_then_the_plan(db, debtor, make_promise, make_payment):
    """A promise kept open beside a plan (written directly: the product does not let one in)
    takes the payment first; the plan gets the rest."""
    agent, case = debtor
    plan = new_plan(db, agent, case)
    promise = make_promise(case.customer, "1000000", TODAY + timedelta(days=2), loan=case.loan,
                           agent=agent)
    pay(db, make_payment, case, "2500000")
    db.session.expire_all()
    assert db.session.get(Promise, promise.id).status == "kept"
    assert instalments(db, plan)[0] == ("part", Decimal(1500000))
    assert plan_violations(db) == []


def test_an_agent_cancels_a_plan_with_a_reason(db, debtor):
    agent, case = debtor
    plan = new_plan(db, agent, case)
    with pytest.raises(plans.PlanValidationError) as info:
        plans.cancel_plan(db.session, agent, plan, "  ")
    assert "cancel_reason" in info.value.errors
    plans.cancel_plan(db.session, agent, plan, "KH xin cơ cấu lại khoản vay")
    db.session.commit()
    assert status(db, plan) == "cancelled"
    assert plans.active_plan(db.session, case.cif) is None


# -- the case view, the queue and the KPIs ------------------------------------------------------


def post(client, url: str, data) -> object:
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    if isinstance(data, dict):
        data = {**data, "csrf_token": token}
    else:
        data = MultiDict([*data, ("csrf_token", token)])
    return client.post(url, data=data, headers={"HX-Request": "true"})


def error_for(html: str, name: str) -> str | None:
    match = re.search(rf'data-error-for="{name}">([^<]*)<', html)
    return match.group(1) if match else None


def test_the_case_view_records_a_plan_and_refuses_a_short_one(db, client, login, debtor):
    agent, case = debtor
    login(agent)
    form = client.get(f"/cases/{case.cif}/plans/form?instalments=3").get_data(as_text=True)
    assert form.count('name="due_date"') == 3
    short = [("instalments", "3"), ("reason", "x"),
             *[(k, v) for d in DATES for k, v in (("due_date", d.isoformat()),
                                                  ("amount", "2.000.000"))]]
    response = post(client, f"/cases/{case.cif}/plans", short)
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#plan-form-slot"
    assert "short of the overdue amount" in error_for(response.get_data(as_text=True),
                                                      "instalments")
    assert db.session.scalar(select(func.count(PaymentPlan.id))) == 0
    # rows that do not pair up (a tampered form): refused, nothing written
    response = post(client, f"/cases/{case.cif}/plans",
                    [("due_date", DATES[0].isoformat()), ("amount", "9.000.000"),
                     ("amount", "1")])
    assert response.status_code == 422
    assert db.session.scalar(select(func.count(PaymentPlan.id))) == 0

    good = [("reason", "KH đồng ý"),
            *[(k, v) for d in DATES for k, v in (("due_date", d.isoformat()),
                                                 ("amount", "3.000.000"))]]
    response = post(client, f"/cases/{case.cif}/plans", good)
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert html.count('data-testid="instalment-row"') == 3
    assert response.headers["HX-Trigger"] == "plan-saved"
    panel = client.get(f"/cases/{case.cif}/plans").get_data(as_text=True)
    assert 'data-status="active"' in panel

    response = post(client, f"/cases/{case.cif}/plans/cancel", {"cancel_reason": ""})
    assert response.status_code == 422
    assert error_for(response.get_data(as_text=True), "cancel_reason")
    response = post(client, f"/cases/{case.cif}/plans/cancel", {"cancel_reason": "Sai số tiền"})
    assert response.status_code == 200
    assert 'data-status="cancelled"' in response.get_data(as_text=True)


def test_the_queue_filters_by_the_latest_plan(db, debtor, ws_case, frozen_now):
    agent, case = debtor
    other = ws_case(agent, dpd=20, overdue="2000000")
    new_plan(db, agent, case)
    frozen_now(datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
    run_broken_promises()

    def cifs(status):
        page = queue_page(db.session, agent.id, QueueFilters.from_args({"plan": status}),
                          datetime(2026, 12, 2, 3, 0, tzinfo=UTC), with_counts=False)
        return {row.case.cif for row in page.rows}

    assert cifs("broken") == {case.cif}
    assert cifs("active") == set()
    assert other.cif not in cifs("broken")
    assert QueueFilters.from_args({"plan": "drop table"}).plan is None
    # a new plan after the broken one: the case is "active" now
    plans.create_plan(db.session, agent, cif=case.cif, rows=rows(
        (date(2026, 12, 5), "4.500.000"), (date(2026, 12, 20), "4.500.000")), reason=None,
        today=date(2026, 12, 2))
    db.session.commit()
    assert cifs("active") == {case.cif} and cifs("broken") == set()


def test_the_plan_kept_rate_counts_resolved_instalments_of_the_agents_plans(
        db, debtor, make_payment, frozen_now):
    agent, case = debtor
    new_plan(db, agent, case)
    pay(db, make_payment, case, "3000000")
    frozen_now(datetime(2026, 12, 16, 3, 0, tzinfo=UTC))
    run_broken_promises()
    board = dashboard(db.session, [agent.team_id], "month", today=date(2026, 12, 16))
    row = next(r for r in board.agent_rows if r.key == agent.id)
    # December: instalment 1 kept (1 Dec), instalment 2 missed (15 Dec); the third not yet due
    assert (row.plan_instalments_due, row.plan_instalments_kept) == (2, 1)
    assert row.values["plan_kept_rate"] == pytest.approx(0.5)
    assert board.total.values["plan_kept_rate"] == pytest.approx(0.5)


# -- the invariant ------------------------------------------------------------------------------


@pytest.mark.parametrize(("tamper", "problem"), [
    ("UPDATE plan_instalments SET amount = amount + 1 WHERE seq = 1",
     "instalments do not add up to the total"),
    ("UPDATE plan_instalments SET paid_amount = 100 WHERE seq = 2",
     "paid amount is not the allocations"),
    ("UPDATE plan_instalments SET status = 'kept' WHERE seq = 3",
     "instalment status does not follow its payments"),
    ("UPDATE payment_plans SET status = 'completed'",
     "plan status does not follow its instalments"),
    ("UPDATE payment_plans SET status = 'broken'",
     "plan status does not follow its instalments"),
    ("UPDATE plan_allocations SET amount = amount + 5000000",
     "payment allocated beyond its amount"),
])
def test_the_invariant_catches_a_plan_that_lies(db, debtor, make_payment, tamper, problem):
    agent, case = debtor
    new_plan(db, agent, case)
    pay(db, make_payment, case, "3000000")
    assert plan_violations(db) == []
    result = next(r for r in check_all(db.session, now=NOW) if r.name == "payment_plans")
    assert result.violations == 0
    db.session.execute(text(tamper))
    db.session.commit()
    found = {v["problem"] for v in plan_violations(db)}
    assert problem in found, found
    result = next(r for r in check_all(db.session, now=NOW) if r.name == "payment_plans")
    assert result.violations >= 1


def test_the_admin_sets_the_plan_limits_on_the_contact_rules_page(db, client, login, make_user):
    admin = login(make_user("admin"))
    page = client.get("/admin/contact-rules").get_data(as_text=True)
    assert 'name="plan_max_instalments"' in page
    form = {"window_start": "07:00", "window_end": "21:00", "max_call_attempts": "7",
            "attempt_window_days": "7", "promise_max_days": "30",
            "plan_min_instalments": "3", "plan_max_instalments": "2",
            "plan_first_within_days": "10", "plan_max_days": "90", "plan_min_amount": "500000",
            "plan_break_after_missed": "2",
            **{name: ("y" if value is True else str(value))
               for name, value in MessageRules().as_json().items()}}
    response = post(client, "/admin/contact-rules", form)
    assert response.status_code == 422
    assert "At least the fewest instalments." in response.get_data(as_text=True)
    assert get_plan_rules(db.session) == PlanRules()
    response = post(client, "/admin/contact-rules", {**form, "plan_max_instalments": "6"})
    assert response.status_code == 302
    db.session.expire_all()
    assert get_plan_rules(db.session) == PlanRules(3, 6, 90, 10, 500000, 2)
    assert admin.id
