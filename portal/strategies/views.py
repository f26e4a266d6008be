"""Strategies: the list (create, run now, placements to review), a strategy's page (its draft
or active version: segments, conditions, steps, variants; simulate, activate; KPIs per variant).
Thin: parse the form, call portal.strategies.operations / engine, render."""

from __future__ import annotations

from types import SimpleNamespace

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models import IntegrationRun, MessageTemplate, Team
from portal.models.strategies import (
    EXIT_CONDITIONS,
    STEP_ACTIONS,
    Strategy,
    StrategySegment,
    StrategyStep,
    StrategyVariant,
)
from portal.permissions.decorators import permission_required
from portal.queues import enqueue
from portal.schedules import Jobs
from portal.strategies import engine, operations
from portal.strategies.conditions import FIELDS, OPERATORS, describe
from portal.strategies.forms import (
    CONDITION_ROWS,
    ChallengerForm,
    EmptyForm,
    SegmentForm,
    StepForm,
    StrategyForm,
)

bp = Blueprint("strategies", __name__, url_prefix="/strategies")


def action_name(action: str) -> str:
    return {"sms": _("SMS"), "email": _("E-mail"), "letter": _("Letter"),
            "call": _("Call queue"), "visit": _("Field visit"),
            "placement_review": _("Placement review")}.get(action, action)


def exit_name(code: str) -> str:
    return {"cured": _("Cured"), "promise_pending": _("Promise pending"),
            "plan_active": _("Plan active"), "placed": _("Placed")}.get(code, code)


def _index(values: dict | None = None, errors: dict | None = None, status: int = 200):
    today = clock.bank_today()
    runs = list(db.session.scalars(select(IntegrationRun).where(
        IntegrationRun.integration == "STRATEGIES").order_by(IntegrationRun.id.desc()).limit(5)))
    return render_template(
        "strategies/index.html", strategies=operations.strategies(db.session),
        input=values or {}, errors=errors or {}, runs=runs, today=today,
        reviews=operations.placement_reviews(db.session, today),
        active_version=operations.active_version, draft_version=operations.draft_version,
    ), status


@bp.get("/")
@permission_required("strategies.view")
def index():
    return _index()


@bp.post("/")
@permission_required("strategies.manage")
def create():
    form = StrategyForm()
    form.validate()
    values = form.submitted()
    raw_rank = (values.get("rank") or "").strip()
    try:
        rank = int(raw_rank) if raw_rank else None
    except ValueError:
        return _index(values, {"rank": _("Enter a whole number from 0 to 10000.")}, 422)
    try:
        strategy = operations.create_strategy(db.session, current_user, values.get("code"),
                                              values.get("name"), rank)
        db.session.commit()
    except operations.StrategyError as exc:
        db.session.rollback()
        return _index(values, exc.errors, 422)
    return redirect(url_for("strategies.detail", strategy_id=strategy.id))


@bp.post("/run")
@permission_required("strategies.manage")
def run_now():
    EmptyForm().validate()
    enqueue("default", Jobs.RUN_STRATEGIES, clock.bank_today().isoformat(), "manual",
            current_user.id)
    flash(_("The daily run has started: its progress shows below and on the ops page."),
          "success")
    return redirect(url_for("strategies.index"))


def _strategy(strategy_id: int) -> Strategy:
    strategy = db.session.get(Strategy, strategy_id)
    if strategy is None:
        abort(404)
    return strategy


def _detail(strategy: Strategy, *, errors: dict | None = None, values: dict | None = None,
            simulation=None, chart_rows=None, status: int = 200):
    version = operations.draft_version(strategy) or operations.active_version(strategy)
    return render_template(
        "strategies/detail.html", strategy=strategy, version=version,
        active=operations.active_version(strategy), errors=errors or {}, input=values or {},
        simulation=simulation, chart_rows=chart_rows or [], fields=FIELDS,
        operators=OPERATORS, describe=describe,
        condition_rows=range(CONDITION_ROWS), exits=EXIT_CONDITIONS, actions=STEP_ACTIONS,
        action_name=action_name, exit_name=exit_name,
        problems=operations.activation_problems(db.session, version)
        if version is not None and version.status == "draft" else [],
        templates=list(db.session.scalars(select(MessageTemplate).where(
            MessageTemplate.active.is_(True)).order_by(MessageTemplate.code))),
        teams=list(db.session.scalars(select(Team).order_by(Team.name))),
        kpis=operations.kpis(db.session, strategy), unit_costs=operations.unit_costs(),
    ), status


@bp.get("/<int:strategy_id>")
@permission_required("strategies.view")
def detail(strategy_id: int):
    return _detail(_strategy(strategy_id))


@bp.get("/<int:strategy_id>/simulate")
@permission_required("strategies.view")
def simulate(strategy_id: int):
    strategy = _strategy(strategy_id)
    version = operations.draft_version(strategy) or operations.active_version(strategy)
    if version is None:
        abort(404)
    simulation = engine.simulate(db.session, version)
    chart_rows = [SimpleNamespace(name=f"{seg['name']} · {action_name(s['step'].action)}",
                                  values={"accounts": s["accounts"]})
                  for seg in simulation.segments for s in seg["steps"]]
    return _detail(strategy, simulation=simulation, chart_rows=chart_rows)


@bp.post("/<int:strategy_id>/draft")
@permission_required("strategies.manage")
def start_draft(strategy_id: int):
    EmptyForm().validate()
    strategy = _strategy(strategy_id)
    operations.new_draft(db.session, current_user, strategy)
    db.session.commit()
    return redirect(url_for("strategies.detail", strategy_id=strategy.id))


@bp.post("/<int:strategy_id>/segments")
@permission_required("strategies.manage")
def add_segment(strategy_id: int):
    strategy = _strategy(strategy_id)
    version = operations.new_draft(db.session, current_user, strategy)
    form = SegmentForm()
    form.validate()
    values = form.submitted()
    rows = [{"field": values.get(f"cond_{i}_field"), "op": values.get(f"cond_{i}_op"),
             "value": values.get(f"cond_{i}_value")} for i in range(CONDITION_ROWS)]
    conditions, errors = operations.parse_conditions(rows)
    try:
        if errors:
            raise operations.StrategyError(errors)
        operations.add_segment(db.session, current_user, version, values.get("name"),
                               conditions, form.exit_conditions.data or [])
        db.session.commit()
    except operations.StrategyError as exc:
        db.session.rollback()
        return _detail(_strategy(strategy_id), errors={f"segment_{k}": v
                                                       for k, v in exc.errors.items()},
                       values=values, status=422)
    return redirect(url_for("strategies.detail", strategy_id=strategy_id) + "#segments")


@bp.post("/segments/<int:segment_id>/steps")
@permission_required("strategies.manage")
def add_step(segment_id: int):
    segment = db.session.get(StrategySegment, segment_id)
    if segment is None:
        abort(404)
    strategy_id = segment.version.strategy_id
    form = StepForm()
    form.validate()
    values = form.submitted()
    try:
        operations.add_step(db.session, current_user, segment, values)
        db.session.commit()
    except operations.StrategyError as exc:
        db.session.rollback()
        return _detail(_strategy(strategy_id),
                       errors={f"step{segment_id}_{k}": v for k, v in exc.errors.items()},
                       values={f"step{segment_id}_{k}": v for k, v in values.items()},
                       status=exc.status)
    return redirect(url_for("strategies.detail", strategy_id=strategy_id)
                    + f"#segment-{segment_id}")


@bp.post("/<int:strategy_id>/challengers")
@permission_required("strategies.manage")
def add_challenger(strategy_id: int):
    strategy = _strategy(strategy_id)
    version = operations.new_draft(db.session, current_user, strategy)
    form = ChallengerForm()
    form.validate()
    values = form.submitted()
    try:
        operations.add_challenger(db.session, current_user, version, values.get("name"),
                                  values.get("split_pct"), values.get("weight_delta") or 0,
                                  form.skip_actions.data or [])
        db.session.commit()
    except operations.StrategyError as exc:
        db.session.rollback()
        return _detail(_strategy(strategy_id),
                       errors={f"challenger_{k}": v for k, v in exc.errors.items()},
                       values={f"challenger_{k}": v for k, v in values.items()}, status=422)
    return redirect(url_for("strategies.detail", strategy_id=strategy_id) + "#variants")


@bp.post("/<int:strategy_id>/activate")
@permission_required("strategies.manage")
def activate(strategy_id: int):
    EmptyForm().validate()
    strategy = _strategy(strategy_id)
    version = operations.draft_version(strategy)
    if version is None:
        abort(409)
    try:
        operations.activate(db.session, current_user, version)
        db.session.commit()
    except operations.StrategyError as exc:
        db.session.rollback()
        return _detail(_strategy(strategy_id), errors=exc.errors, status=exc.status)
    flash(_("Version %(number)s is active: the daily run uses it from now on.",
            number=version.number), "success")
    return redirect(url_for("strategies.detail", strategy_id=strategy_id))




def _removed(strategy_id: int, remove, anchor: str):
    EmptyForm().validate()
    try:
        remove()
        db.session.commit()
    except operations.StrategyError as exc:
        db.session.rollback()
        return _detail(_strategy(strategy_id), errors=exc.errors, status=exc.status)
    return redirect(url_for("strategies.detail", strategy_id=strategy_id) + anchor)


@bp.post("/steps/<int:step_id>/remove")
@permission_required("strategies.manage")
def remove_step(step_id: int):
    step = db.session.get(StrategyStep, step_id)
    if step is None:
        abort(404)
    return _removed(step.segment.version.strategy_id,
                    lambda: operations.remove_step(db.session, current_user, step),
                    f"#segment-{step.segment_id}")


@bp.post("/segments/<int:segment_id>/remove")
@permission_required("strategies.manage")
def remove_segment(segment_id: int):
    segment = db.session.get(StrategySegment, segment_id)
    if segment is None:
        abort(404)
    return _removed(segment.version.strategy_id,
                    lambda: operations.remove_segment(db.session, current_user, segment),
                    "#segments")


@bp.post("/variants/<int:variant_id>/remove")
@permission_required("strategies.manage")
def remove_challenger(variant_id: int):
    variant = db.session.get(StrategyVariant, variant_id)
    if variant is None:
        abort(404)
    return _removed(variant.version.strategy_id,
                    lambda: operations.remove_challenger(db.session, current_user, variant),
                    "#variants")
