"""Home pages: each role lands on a page made of its own work, read from the database."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import text

from portal import clock
from portal.cases import queue, statuses
from portal.extensions import db, get_redis
from portal.main import dashboard
from portal.permissions.decorators import permission_required, public

bp = Blueprint("main", __name__)


@bp.get("/")
@permission_required("portal.access")
def home():
    role = current_user.role
    if role == "auditor":  # an auditor's work is the audit log
        return redirect(url_for("admin.audit_log_page"))
    now = clock.now()
    today = clock.bank_today(now)
    if role == "agent":
        # an agent's home is the work queue, under the day's summary
        filters = queue.QueueFilters.from_args(request.args)
        page = queue.queue_page(db.session, current_user.id, filters, now,
                                role=current_user.role)
        return render_template("cases/queue.html", page=page, filters=filters, now=now,
                               home=dashboard.agent_home(db.session, current_user, today),
                               today=today,
                               status_choices=statuses.queue_choices(db.session, page.counts))
    if role == "field_agent":
        data = dashboard.field_agent_home(db.session, current_user, today)
    elif role == "supervisor":
        data = dashboard.supervisor_home(db.session, current_user, today)
    elif role == "ops":
        data = dashboard.ops_home(db.session)
    else:
        data = dashboard.admin_home(db.session)
    return render_template(f"main/home_{role}.html", data=data, today=today)


@bp.get("/health")
@public
def health():
    """Liveness and readiness for load balancers: PostgreSQL and Redis answer."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        db.session.rollback()
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "degraded", checks=checks), 200 if healthy else 503


@bp.get("/healthz")
@public
def healthz():
    """Liveness: the process answers (checks nothing else, so a database outage does not get
    every web process restarted)."""
    return jsonify(status="ok")


@bp.get("/readyz")
@public
def readyz():
    """Readiness: PostgreSQL and Redis both answer (503 otherwise: take this process out of
    the load balancer until they do). Same checks as /health."""
    return health()
