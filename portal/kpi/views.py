"""The KPI dashboard page and its CSV export: parse the filters, call the service, render."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from portal.extensions import db
from portal.kpi import operations as kpis
from portal.models import Team
from portal.permissions.decorators import permission_required

bp = Blueprint("kpi", __name__, url_prefix="/supervisor/kpi")


def _selection():
    visible = kpis.visible_team_ids(db.session, current_user)
    raw = request.args.get("team", "")
    if raw and not raw.isdigit():
        abort(400, description=_("team must be a team id"))
    team_id = int(raw) if raw else None
    if team_id is not None and team_id not in visible:
        abort(403, description=_("That team is not one of yours."))
    period = request.args.get("period", "today")
    if period not in kpis.PERIODS:
        abort(400, description=_("period must be one of %(periods)s",
                                     periods=", ".join(kpis.PERIODS)))
    return visible, team_id, period


@bp.get("/")
@permission_required("supervisor.kpi")
def dashboard():
    visible, team_id, period = _selection()
    board = kpis.dashboard(db.session, [team_id] if team_id else visible, period)
    db.session.commit()  # keep a roll-rate snapshot refreshed on this read for the next ones
    teams = db.session.query(Team).filter(Team.id.in_(visible or [-1])).order_by(Team.name).all()
    return render_template("kpi/dashboard.html", board=board, teams=teams, team_id=team_id,
                           period=period, periods=kpis.PERIODS, labels=kpis.PERIOD_LABELS)


@bp.get("/export.csv")
@permission_required("supervisor.kpi")
def export():
    visible, team_id, period = _selection()
    board = kpis.dashboard(db.session, [team_id] if team_id else visible, period)
    db.session.commit()
    filename = f"kpis-{period}-{board.last.isoformat()}.csv"
    return Response(kpis.to_csv(board), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
