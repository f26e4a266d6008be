"""Ops pages: integration health (cards polled by HTMX), runs and their detail, quarantined
records, workers and queues, alerts; actions (ops.actions) ask for confirmation and are audited
in the service they call."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from integrations import control
from portal.events.relay import request_relay_after_commit
from portal.extensions import db
from portal.labels import label
from portal.models.enums import INTEGRATIONS, RUN_STATUSES
from portal.ops import actions as ops_actions
from portal.ops import alerts, charts, invariants, owner_moves, queries
from portal.ops import health as ops_health
from portal.ops.forms import BreakerForm, MoveDecisionForm, ReasonForm, RequeueForm, ReturnForm
from portal.ops.words import shown
from portal.ops.worker_health import collect_health
from portal.permissions.decorators import permission_required, safe_next
from portal.vault import backup as backups

bp = Blueprint("ops", __name__)


@bp.app_template_filter("duration_ms")
def _duration_filter(value) -> str:
    return charts.format_duration_ms(value)


@bp.app_template_filter("said")
def _said_filter(value) -> str:
    """Ops text made in Python (portal/ops/words.py) in the reader's language."""
    return shown(value)


@bp.app_template_filter("alert_title")
def _alert_title_filter(alert) -> str:
    return alerts.shown(alert, "title")


@bp.app_template_filter("alert_detail")
def _alert_detail_filter(alert) -> str:
    return alerts.shown(alert, "detail")


@bp.app_template_filter("backlog_label")
def _backlog_label_filter(value: str) -> str:
    text = ops_health.backlog_message(value).render()
    return text[:1].upper() + text[1:]


@bp.app_template_filter("invariant_description")
def _invariant_description_filter(result) -> str:
    """A truth check result's description in the reader's language (first letter capital)."""
    def get(key):
        return result.get(key) if isinstance(result, dict) else getattr(result, key, None)
    known = invariants.INVARIANT_WORDS.get(get("name"))
    text = _(known) if known else (get("description") or "")
    return text[:1].upper() + text[1:]


@bp.app_template_filter("percent")
def _percent_filter(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%".replace(".0%", "%")


def _page() -> int:
    return max(1, request.args.get("page", 1, type=int) or 1)


def _pages(total: int) -> int:
    return max(1, -(-total // queries.PAGE_SIZE))


def _integration(name: str) -> str:
    name = (name or "").upper()
    if name not in INTEGRATIONS:
        abort(404)
    return name


def _back(form: ReturnForm, default_endpoint: str = "ops.integrations", **values):
    """Where an action returns: the page it came from (same site only) or ``default``."""

    target = safe_next(form.next.data) or url_for(default_endpoint, **values)
    return redirect(target, code=303)


def _cards_context() -> dict:
    cards = ops_health.collect_cards(db.session)
    return {
        "cards": cards,
        "charts": {c.name: charts.card_charts(c) for c in cards},
        "summary": ops_health.summary(cards),
        "firing": alerts.firing(db.session),
        "available": {c.name: ops_actions.available(c.name) for c in cards},
        "triggers": ops_actions.TRIGGERS,
        "poll": current_app.config.get("OPS_POLL_SECONDS", 10),
        "url_endpoints": current_app.view_functions,
    }


# --- health page ---------------------------------------------------------------------------------


@bp.get("/ops/integrations")
@permission_required("ops.integrations")
def integrations():
    return render_template("ops/integrations.html", **_cards_context())


@bp.get("/ops/integrations/cards")
@permission_required("ops.integrations")
def cards():
    """The cards grid alone (polled every OPS_POLL_SECONDS by the health page)."""
    return render_template("ops/_cards.html", **_cards_context())


# --- runs ----------------------------------------------------------------------------------------


@bp.get("/ops/integrations/runs")
@permission_required("ops.integrations")
def runs():
    integration = (request.args.get("integration") or "").upper() or None
    status = request.args.get("status") or None
    page = _page()
    rows, total = queries.runs(db.session, integration=integration, status=status, page=page)
    return render_template("ops/runs.html", rows=rows, total=total, page=page,
                           pages=_pages(total), integration=integration,
                           status=status, integrations=INTEGRATIONS, statuses=RUN_STATUSES,
                           labels={c.name: c.label for c in ops_health.CARDS})


@bp.get("/ops/integrations/runs/<int:run_id>")
@permission_required("ops.integrations")
def run_detail(run_id: int):
    detail = queries.run_detail(db.session, run_id) or abort(404)
    run = detail.run
    return render_template(
        "ops/run_detail.html", run=run, quarantined=detail.quarantined,
        quarantined_total=detail.quarantined_total, retries=detail.retries, lines=detail.lines,
        duration=detail.duration, spec=ops_health.CARD_BY_NAME.get(run.integration),
        available=ops_actions.available(run.integration), triggers=ops_actions.TRIGGERS,
        moves=owner_moves.run_moves(db.session, run.id))


@bp.post("/ops/integrations/runs/<int:run_id>/moves")
@permission_required("ops.actions")
def decide_moves(run_id: int):
    """Apply or reject the product moves the run held (one, or all of them), audited."""
    form = MoveDecisionForm()
    queries.run(db.session, run_id) or abort(404)
    if not form.validate():
        flash(form.first_error(), "error")
        return _back(form, "ops.run_detail", run_id=run_id)
    try:
        decided, _ = owner_moves.decide(db.session, current_user, run_id, form.decision.data,
                                        form.move.data)
    except owner_moves.MoveDecisionError as exc:
        db.session.rollback()
        flash(shown(exc.args[0] if exc.args else exc).capitalize() + ".", "error")
    else:
        db.session.commit()
        request_relay_after_commit()  # the PRODUCT_OWNER_CHANGED events of applied moves
        if form.decision.data == "apply":
            flash(ngettext("%(num)d move applied.", "%(num)d moves applied.", decided), "success")
        else:
            flash(ngettext("%(num)d move rejected.", "%(num)d moves rejected.", decided),
                  "success")
    return _back(form, "ops.run_detail", run_id=run_id)


@bp.get("/ops/integrations/quarantine")
@permission_required("ops.integrations")
def quarantine():
    integration = (request.args.get("integration") or "").upper() or None
    status = request.args.get("status", "open")
    page = _page()
    rows, total = queries.quarantined(db.session, integration=integration, status=status,
                                      page=page)
    return render_template("ops/quarantine.html", rows=rows, total=total, page=page,
                           pages=_pages(total), integration=integration,
                           status=status, integrations=INTEGRATIONS,
                           labels={c.name: c.label for c in ops_health.CARDS})


# --- actions (ops.actions; each confirmed in the page and audited by its service) ---------------


ACTION_WORDS = {"run_now": _l("run now"), "full_resync": _l("full resync"),
                "retry_run": _l("retry run")}


def _run_action(name: str, action: str, run=None):
    try:
        message = ops_actions.trigger(db.session, name, action, current_user, run=run)
    except ops_actions.ActionError as exc:
        db.session.rollback()
        flash(shown(exc.args[0] if exc.args else exc), "error")
    except Exception as exc:  # the integration's trigger failed: say so, keep the page
        db.session.rollback()
        current_app.logger.exception("ops action failed")
        error = f"{type(exc).__name__}: {exc}"
        flash(_("%(name)s: %(action)s failed: %(error)s", name=name,
                action=ACTION_WORDS.get(action, action), error=error), "error")
    else:
        flash(shown(message), "success")


@bp.post("/ops/integrations/<name>/run")
@permission_required("ops.actions")
def run_now(name: str):
    form = ReturnForm()
    _run_action(_integration(name), "run_now")
    return _back(form)


@bp.post("/ops/integrations/<name>/resync")
@permission_required("ops.actions")
def full_resync(name: str):
    form = ReturnForm()
    _run_action(_integration(name), "full_resync")
    return _back(form)


@bp.post("/ops/integrations/runs/<int:run_id>/retry")
@permission_required("ops.actions")
def retry_run(run_id: int):
    form = ReturnForm()
    run = queries.run(db.session, run_id) or abort(404)
    _run_action(run.integration, "retry_run", run)
    return _back(form, "ops.run_detail", run_id=run_id)


@bp.post("/ops/integrations/<name>/pause")
@permission_required("ops.actions")
def pause(name: str):
    name = _integration(name)
    form = ReasonForm()
    control.pause(name, current_user, form.reason.data)
    flash(_("%(name)s paused: its jobs skip their work and its webhooks store what arrives "
            "until you resume it.", name=ops_health.CARD_BY_NAME[name].label), "warning")
    return _back(form)


@bp.post("/ops/integrations/<name>/resume")
@permission_required("ops.actions")
def resume(name: str):
    name = _integration(name)
    form = ReasonForm()
    control.resume(name, current_user, form.reason.data)
    flash(_("%(name)s resumed.", name=ops_health.CARD_BY_NAME[name].label), "success")
    return _back(form)


@bp.post("/ops/breakers/<name>")
@permission_required("ops.actions")
def force_breaker(name: str):
    name = _integration(name)
    form = BreakerForm()
    if not form.validate():
        abort(400, description=form.first_error())
    state = form.state.data
    control.force(name, state, current_user, reason=form.reason.data)
    db.session.commit()  # the audit row
    flash(_("Circuit breaker of %(name)s forced %(state)s.", name=name,
            state=label(state, "breaker").lower()), "success")
    return _back(form)


@bp.post("/ops/dead-letters/retry")
@permission_required("ops.actions")
def retry_dead_letters():
    form = ReturnForm()
    count = ops_actions.retry_dead_letters(db.session, current_user)
    flash(ngettext("Re-enqueued %(num)d dead letter.", "Re-enqueued %(num)d dead letters.", count),
          "success")
    return _back(form)


# --- workers and queues --------------------------------------------------------------------------


@bp.get("/ops/workers")
@permission_required("ops.integrations")
def workers():
    error = None
    try:
        health = collect_health()
        failed = ops_actions.failed_jobs()
    except Exception as exc:  # Redis down: the page says so
        health, failed, error = None, [], f"{type(exc).__name__}: {exc}"
    seen_backups = backups.seen(backups.root_of(current_app),
                                current_app.config["BACKUP_STALE_HOURS"])
    return render_template("ops/workers.html", health=health, failed=failed, error=error,
                           backups=seen_backups,
                           poll=current_app.config.get("OPS_POLL_SECONDS", 10))


@bp.post("/ops/workers/failed/requeue")
@permission_required("ops.actions")
def requeue_failed():
    form = RequeueForm()
    if not form.validate():
        abort(400, description=form.first_error())
    queue_name = form.queue.data
    try:
        count = ops_actions.requeue_failed(db.session, current_user, queue_name=queue_name,
                                           job_id=form.job_id.data)
    except ops_actions.ActionError as exc:
        flash(shown(exc.args[0] if exc.args else exc), "error")
    else:
        flash(ngettext("Requeued %(num)d failed job on %(queue)s.",
                       "Requeued %(num)d failed jobs on %(queue)s.", count, queue=queue_name),
              "success")
    return _back(form, "ops.workers")


# --- alerts --------------------------------------------------------------------------------------


@bp.get("/ops/alerts")
@permission_required("ops.integrations")
def alerts_page():
    return render_template("ops/alerts.html", firing=alerts.firing(db.session),
                           history=alerts.history(db.session, limit=100),
                           rules=alerts.RULE_TITLES,
                           webhook=bool(current_app.config.get("ALERT_WEBHOOK_URL")))
