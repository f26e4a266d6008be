"""The strategies' daily run (portal/strategies): the simulation counts what the run assigns,
re-running a business date writes and sends nothing twice, exit conditions take accounts out of
their step, the call step lifts the case in its team's queue, the run is recorded for the ops
page, and the invariant catches a doubled assignment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from portal.cases import queue
from portal.models import (
    AuditLog,
    Case,
    IntegrationRun,
    Message,
    MessageTemplate,
    Promise,
    StrategyAssignment,
)
from portal.ops import invariants
from portal.strategies import engine, operations, run
from portal.strategies.checks import violations

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
TODAY = date(2026, 11, 24)


@pytest.fixture
def portfolio(db, make_loan, make_customer, make_team, make_user, frozen_now):
    """Twelve customers, one loan and an open case each: DPD 0 (due in 3 days), 5, 12, 40, 95
    and so on; a team, a supervisor, SMS and letter templates."""
    frozen_now(NOW)
    team = make_team(name="Đội Hà Nội")
    supervisor = make_user("supervisor", team_id=team.id)
    db.session.add_all([
        MessageTemplate(code="SMS_REMIND", channel="sms", name="Nhắc nợ",
                        body_vi="Quý khách {name} ...", body_en="Dear {name} ..."),
        MessageTemplate(code="LETTER_DEMAND", channel="letter", name="Thư",
                        body_vi="Kính gửi", body_en="Dear")])
    loans = {}
    for dpd in (0, 0, 5, 5, 12, 12, 40, 40, 40, 95, 95, 120):
        customer = make_customer()
        db.session.add(Case(cif=customer.cif, status="open"))
        db.session.commit()
        loan = make_loan(customer, dpd=dpd, next_payment_date=TODAY + timedelta(days=3)
                         if dpd == 0 else TODAY - timedelta(days=dpd))
        loans.setdefault(dpd, []).append(loan)
    queue.recompute_case_totals(db.session)
    queue.recompute_priorities(db.session, now=NOW)
    db.session.commit()
    return {"team": team, "supervisor": supervisor, "loans": loans}


def build(db, portfolio, challenger_pct: int | None = None):
    actor = portfolio["supervisor"]
    strategy = operations.create_strategy(db.session, actor, "EARLY", "Sớm và muộn")
    version = strategy.versions[0]
    early = operations.add_segment(db.session, actor, version, "Sớm",
                                   [{"field": "dpd", "op": "le", "value": "30"}], ["cured"])
    operations.add_step(db.session, actor, early, {"key": "dpd", "at_value": "-3",
                                                  "action": "sms", "template_code": "SMS_REMIND"})
    operations.add_step(db.session, actor, early, {"key": "dpd", "at_value": "5",
                                                  "action": "call", "priority_weight": "200",
                                                  "team_id": str(portfolio["team"].id)})
    late = operations.add_segment(db.session, actor, version, "Muộn",
                                  [{"field": "dpd", "op": "gt", "value": "30"},
                                   {"field": "overdue", "op": "ge", "value": "1.000.000"}],
                                  ["promise_pending"])
    operations.add_step(db.session, actor, late, {"key": "dpd", "at_value": "31",
                                                 "action": "letter",
                                                 "template_code": "LETTER_DEMAND"})
    operations.add_step(db.session, actor, late, {"key": "dpd", "at_value": "90",
                                                 "action": "placement_review"})
    if challenger_pct:
        operations.add_challenger(db.session, actor, version, "Thử thách", challenger_pct,
                                  weight_delta=100)
    db.session.commit()
    return strategy, version


def test_simulation_counts_what_the_run_assigns(db, portfolio):
    strategy, version = build(db, portfolio)
    simulated = engine.simulate(db.session, version, TODAY)
    assert db.session.scalar(select(func.count()).select_from(StrategyAssignment)) == 0
    early, late = simulated.segments
    assert (early["accounts"], late["accounts"], simulated.total) == (6, 6, 12)
    # DPD 0 (due in 3 days → dpd −3): cured exits them; 5 and 12 → the call step
    assert early["exited"] == 2
    assert [s["accounts"] for s in early["steps"]] == [0, 4]
    assert [s["accounts"] for s in late["steps"]] == [3, 3]
    assert {r["account_number"] for r in simulated.sample} == {
        loan.account_number for loans in portfolio["loans"].values() for loan in loans}

    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    counts = run.run_business_date(db.session, TODAY, now=NOW)
    db.session.commit()
    assert counts["assigned"] == counts["accounts"] == simulated.total
    per_step = dict(db.session.execute(
        select(StrategyAssignment.step_id, func.count()).group_by(StrategyAssignment.step_id)
    ).all())
    for segment in simulated.segments:
        for step in segment["steps"]:
            assert per_step.get(step["step"].id, 0) == step["accounts"]
        assert per_step.get(None, 0) == early["exited"] + late["exited"]
    assert counts["per_action"] == {"call": 4, "letter": 3, "placement_review": 3}
    assert counts["messages"] == 3  # the letters; the SMS step's accounts exited (cured)
    letters = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert {m.channel for m in letters} == {"letter"}
    first = letters[0]
    assert (first.status, first.source, first.language, first.body, first.phone_id) == (
        "queued", "strategy", "vi", "", None)
    assert first.dedupe_key == (f"strategy:{TODAY}:{first.account_number}:"
                                f"{late.steps[0].id}" if (late := version.segments[1]) else "")
    assert first.business_date == TODAY and first.strategy_assignment_id is not None
    reviews = operations.placement_reviews(db.session, TODAY)
    assert sorted(r["dpd"] for r in reviews) == [95, 95, 120]


def test_rerunning_a_business_date_writes_and_sends_nothing_twice(db, portfolio):
    _strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    first = run.run_business_date(db.session, TODAY, now=NOW)
    db.session.commit()
    before = (db.session.scalar(select(func.count()).select_from(StrategyAssignment)),
              db.session.scalar(select(func.count()).select_from(Message)),
              sorted(db.session.execute(select(Case.id, Case.priority)).all()))
    again = run.run_business_date(db.session, TODAY, now=NOW + timedelta(hours=3))
    db.session.commit()
    after = (db.session.scalar(select(func.count()).select_from(StrategyAssignment)),
             db.session.scalar(select(func.count()).select_from(Message)),
             sorted(db.session.execute(select(Case.id, Case.priority)).all()))
    assert first["assigned"] == 12 and first["messages"] == 3
    assert (again["assigned"], again["messages"], again["cases_weighted"],
            again["cases_cleared"], again["visits"]) == (0, 0, 0, 0, 0)
    assert before == after


def test_next_day_keeps_the_step_without_sending_again(db, portfolio):
    _strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    run.run_business_date(db.session, TODAY, now=NOW)
    db.session.commit()
    tomorrow = run.run_business_date(db.session, TODAY + timedelta(days=1),
                                     now=NOW + timedelta(days=1))
    db.session.commit()
    assert tomorrow["assigned"] == 12
    assert tomorrow["messages"] == 0  # same step as yesterday: not entered again
    since = db.session.execute(select(StrategyAssignment.segment_since).where(
        StrategyAssignment.business_date == TODAY + timedelta(days=1))).scalars().all()
    assert set(since) == {TODAY}


def test_exit_condition_promise_pending(db, portfolio):
    _strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    loan = portfolio["loans"][40][0]
    db.session.add(Promise(cif=loan.cif, account_number=loan.account_number,
                           amount=Decimal("1000000"), promised_date=TODAY + timedelta(days=2),
                           status="pending"))
    db.session.commit()
    run.run_business_date(db.session, TODAY, now=NOW)
    db.session.commit()
    mine = db.session.scalar(select(StrategyAssignment).where(
        StrategyAssignment.account_number == loan.account_number))
    assert (mine.exited, mine.step_id) == ("promise_pending", None)
    assert db.session.scalar(select(func.count()).select_from(Message).where(
        Message.account_number == loan.account_number)) == 0


def test_call_step_puts_the_case_in_the_team_queue_with_its_weight(db, portfolio, make_user):
    _strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    loan = portfolio["loans"][12][0]
    case = db.session.scalar(select(Case).where(Case.cif == loan.cif))
    before = case.priority
    run.run_business_date(db.session, TODAY, now=NOW)
    db.session.commit()
    db.session.refresh(case)
    assert (case.strategy_weight, case.strategy_team_id) == (200, portfolio["team"].id)
    assert case.priority == before + 200
    # the hourly recompute keeps the weight (one definition of the priority)
    queue.recompute_priorities(db.session, now=NOW)
    db.session.commit()
    db.session.refresh(case)
    assert case.priority == before + 200
    assert invariants.case_priority_recompute(db.session, NOW) == []
    # Next case: agents of another team never get the team's pool cases; its members do
    weighted = set(db.session.scalars(select(Case.id).where(Case.strategy_weight == 200)))
    assert len(weighted) == 4
    outsiders = {getattr(queue.next_case(db.session, make_user("agent"), NOW), "id", None)
                 for _ in range(12)}
    assert outsiders and not outsiders & weighted
    members = {queue.next_case(db.session, make_user("agent", team_id=portfolio["team"].id),
                               NOW).id for _ in range(4)}
    assert members <= weighted | outsiders and members & weighted


def test_challenger_draw_is_recorded_and_stable(db, portfolio):
    strategy, version = build(db, portfolio, challenger_pct=20)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    run.run_business_date(db.session, TODAY, now=NOW)
    db.session.commit()
    challenger = next(v for v in version.variants if not v.is_champion)
    for a in db.session.scalars(select(StrategyAssignment)):
        assert a.draw == engine.stable_draw(strategy.id, a.account_number)
        assert (a.variant_id == challenger.id) == (80 <= a.draw < 100)
    figures = operations.kpis(db.session, strategy, until=TODAY)
    assert figures[0].is_champion and sum(k.accounts for k in figures) == 12
    drawn = [engine.stable_draw(strategy.id, a) for a in db.session.scalars(
        select(StrategyAssignment.account_number))]
    in_challenger = sum(d >= 80 for d in drawn)
    arms = [("Champion", 12 - in_challenger)]
    if in_challenger:
        arms.append(("Thử thách", in_challenger))
    assert [(k.name, k.accounts) for k in figures] == arms
    calls = {k.name: k.actions.get("call", 0) for k in figures}
    assert sum(calls.values()) == 4  # the DPD 5 and 12 accounts
    letters = sum(k.actions.get("letter", 0) for k in figures)
    assert letters == 3
    costs = operations.unit_costs()
    for k in figures:
        assert k.costs.get("call", 0) == calls[k.name] * costs["call"]
    if in_challenger:
        assert set(figures[1].ci) == {"cure_rate", "roll_rate", "kept_rate", "collected"}


def test_unit_costs_come_from_the_settings(app, db, portfolio):
    app.config["STRATEGY_UNIT_COSTS"] = {"call": 1234}
    try:
        assert operations.unit_costs()["call"] == 1234
        assert operations.unit_costs()["sms"] == operations.UNIT_COSTS["sms"]
    finally:
        app.config["STRATEGY_UNIT_COSTS"] = {}


def test_run_is_recorded_for_the_ops_page(app, db, portfolio):
    _strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    recorded = run.run_and_record(db.session, TODAY, trigger="manual")
    assert (recorded.integration, recorded.kind, recorded.status) == (
        "STRATEGIES", "assign", "succeeded")
    assert (recorded.extracted, recorded.progress_done, recorded.progress_total) == (12, 4, 4)
    assert recorded.control_totals["messages"] == 3
    assert db.session.scalar(select(func.count()).select_from(IntegrationRun)) == 1
    # one record per account (portal/run_counts.py): the assigned ones written; a re-run of
    # the date finds them all already so; both runs' counts keep the definition
    assert (recorded.loaded, recorded.unchanged, recorded.transformed) == (
        recorded.control_totals["assigned"], 12 - recorded.control_totals["assigned"], 12)
    again = run.run_and_record(db.session, TODAY, trigger="manual")
    assert (again.extracted, again.loaded, again.unchanged) == (12, 0, 12)
    assert invariants.check_all(db.session, names=["run_counts"])[0].violations == 0


def test_on_for_chosen_teams_first_the_run_takes_only_their_cases(
        app, db, portfolio, make_team, make_user):
    """The strategies flag on for one team (a pilot): the run assigns only the accounts of
    cases assigned to that team's agents; on for everyone again, the rest join."""
    from portal.flags import operations as flags

    _strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    pilot_agent = make_user("agent", team_id=portfolio["team"].id)
    other_agent = make_user("agent", team_id=make_team(name="Đội Huế").id)
    cases = db.session.scalars(select(Case).order_by(Case.id)).all()
    for number, case in enumerate(cases):
        case.assigned_agent_id = (pilot_agent if number % 3 == 0 else other_agent).id
    pilot_cifs = {case.cif for number, case in enumerate(cases) if number % 3 == 0}
    flags.set_flag(db.session, "strategies", "teams", [portfolio["team"].id], "test")
    db.session.commit()

    piloted = run.run_and_record(db.session, TODAY, trigger="manual")
    assigned = set(db.session.scalars(select(StrategyAssignment.cif)))
    assert assigned == pilot_cifs and len(pilot_cifs) == 4
    assert piloted.control_totals["rollout_teams"] == [portfolio["team"].id]
    assert {m.cif for m in db.session.scalars(select(Message))} <= pilot_cifs

    flags.set_flag(db.session, "strategies", "all", None, "test")
    db.session.commit()
    everyone = run.run_and_record(db.session, TODAY, trigger="manual")
    assert (everyone.extracted, everyone.loaded) == (12, 8)
    assert "rollout_teams" not in everyone.control_totals
    results = invariants.check_all(db.session, names=["run_counts", "strategy_assignments"])
    assert [r.violations for r in results] == [0, 0]


def test_activation_is_audited_and_freezes_the_version(db, portfolio):
    strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "strategy.activated")) == 1
    with pytest.raises(operations.StrategyError):
        operations.add_segment(db.session, portfolio["supervisor"], version, "X", [], [])
    draft = operations.new_draft(db.session, portfolio["supervisor"], strategy)
    assert draft.number == 2 and len(draft.segments) == 2
    operations.activate(db.session, portfolio["supervisor"], draft, NOW)
    db.session.commit()
    assert [v.status for v in strategy.versions] == ["retired", "active"]


def test_invariant_catches_a_doubled_assignment(db, portfolio):
    _strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    run.run_business_date(db.session, TODAY, now=NOW)
    db.session.commit()
    assert violations(db.session) == []
    try:
        db.session.execute(text("DROP INDEX uq_strategy_assignments_day_account"))
        db.session.execute(text(
            "INSERT INTO strategy_assignments (business_date, account_number, cif, case_id, "
            "strategy_id, version_id, segment_id, step_id, variant_id, draw, segment_since, "
            "entered_step, exited, dpd, bucket, overdue, outstanding) "
            "SELECT business_date, account_number, cif, case_id, strategy_id, version_id, "
            "segment_id, step_id, variant_id, draw, segment_since, entered_step, exited, dpd, "
            "bucket, overdue, outstanding FROM strategy_assignments ORDER BY id LIMIT 1"))
        found = violations(db.session)
        assert [v["problem"] for v in found] == ["two assignments in one day"]
        result = invariants.check_all(db.session, now=NOW, names=["strategy_assignments"])
        assert result[0].violations == 1
    finally:
        db.session.rollback()
    assert db.session.execute(text(
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'uq_strategy_assignments_day_account'"
    )).scalar() == 1


def test_no_segment_simulates_nobody_and_no_active_strategy_clears_the_call_steps(
        db, portfolio):
    empty = operations.create_strategy(db.session, portfolio["supervisor"], "EMPTY", "Trống")
    db.session.commit()
    assert engine.simulate(db.session, empty.versions[0], TODAY).total == 0
    strategy, version = build(db, portfolio)
    operations.activate(db.session, portfolio["supervisor"], version, NOW)
    db.session.commit()
    run.run_business_date(db.session, TODAY, now=NOW)
    db.session.commit()
    weighted = db.session.scalar(select(func.count()).select_from(Case).where(
        Case.strategy_weight > 0))
    assert weighted == 4
    version.status, version.retired_at = "retired", NOW  # nothing active tomorrow
    db.session.commit()
    tomorrow = run.run_business_date(db.session, TODAY + timedelta(days=1), now=NOW)
    db.session.commit()
    assert (tomorrow["assigned"], tomorrow["cases_cleared"]) == (0, 4)
    assert db.session.scalar(select(func.count()).select_from(Case).where(
        (Case.strategy_weight > 0) | Case.strategy_team_id.is_not(None))) == 0
    assert invariants.case_priority_recompute(db.session, NOW) == []


def test_a_draft_loses_steps_segments_and_challengers_an_active_version_does_not(db, portfolio):
    strategy, version = build(db, portfolio, challenger_pct=20)
    actor = portfolio["supervisor"]
    early, late = version.segments
    operations.remove_step(db.session, actor, early.steps[0])
    assert [s.action for s in early.steps] == ["call"]
    operations.remove_segment(db.session, actor, early)
    assert [(s.name, s.position) for s in version.segments] == [("Muộn", 1)]
    challenger = next(v for v in version.variants if not v.is_champion)
    operations.remove_challenger(db.session, actor, challenger)
    assert [(v.name, v.split_pct) for v in version.variants] == [("Champion", 100)]
    with pytest.raises(operations.StrategyError):
        operations.remove_challenger(db.session, actor, version.variants[0])
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action.in_(("strategy.step_removed", "strategy.segment_removed",
                             "strategy.variant_removed")))) == 3
    operations.activate(db.session, actor, version, NOW)
    db.session.commit()
    with pytest.raises(operations.StrategyError) as refused:
        operations.remove_step(db.session, actor, version.segments[0].steps[0])
    assert refused.value.status == 409
