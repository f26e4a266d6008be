"""The ops page of the truth check (routes on the ops blueprint): the latest result of each
invariant with its violating rows, the recent runs, and "Check now"."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.extensions import db
from portal.ops import charts, invariants
from portal.ops.forms import ReturnForm
from portal.ops.views import bp
from portal.permissions.decorators import permission_required


@bp.get("/ops/invariants")
@permission_required("ops.integrations")
def invariants_page():
    runs = invariants.recent_runs(db.session)
    history = charts.bars([{"value": r.violations, "failed": bool(r.violations or r.errors),
                            "title": ngettext("run %(id)s: %(num)d violation",
                                              "run %(id)s: %(num)d violations", r.violations or 0,
                                              id=r.id)}
                           for r in reversed(runs)], width=360, label=_("violations per run"))
    return render_template("ops/invariants.html", latest=runs[0] if runs else None,
                           runs=runs, checks=invariants.INVARIANTS, history=history)


@bp.post("/ops/invariants/check")
@permission_required("ops.actions")
def check_invariants_now():
    ReturnForm()
    try:
        invariants.request_check(db.session, current_user)
        flash(_("The check is queued; this page shows its result when it has run."), "success")
    except invariants.QueueUnavailable:
        flash(_("The job queue is unavailable; try again in a moment."), "error")
    return redirect(url_for("ops.invariants_page"), code=303)
