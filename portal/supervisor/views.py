"""The live agent-status board (HTMX polling; the same template renders page and rows)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user

from portal import clock
from portal.calls import agent_status
from portal.calls import operations as calls
from portal.extensions import db, partial_request
from portal.models.enums import AGENT_STATUSES
from portal.permissions.decorators import permission_required
from portal.text import mask_phone

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")



def board_args(args) -> dict:
    raw_team = args.get("team", "")
    status = args.get("status") if args.get("status") in AGENT_STATUSES else None
    sort = args.get("sort") if args.get("sort") in agent_status.SORTS else "status"
    direction = "desc" if args.get("dir") == "desc" else "asc"
    return {"team_id": int(raw_team) if raw_team.isdigit() else None, "status": status,
            "sort": sort, "direction": direction}


@bp.get("/board")
@permission_required("supervisor.board")
def board():
    params = board_args(request.args)
    now = clock.now()
    thresholds = agent_status.stuck_thresholds(current_app.config.get("BOARD_STUCK_MINUTES"))
    data = agent_status.board(db.session, current_user, thresholds=thresholds, now=now,
                              **params)
    since = now - timedelta(hours=24)
    context = {
        "board": data, "now": now, "labels": agent_status.STATUS_LABELS,
        "tones": agent_status.STATUS_TONES,
        "statuses": AGENT_STATUSES, "poll": current_app.config.get("BOARD_POLL_SECONDS", 5),
        "query": {"team": params["team_id"] or None, "status": params["status"],
                  "sort": params["sort"], "dir": params["direction"]},
        "unmatched": calls.unmatched_calls(db.session, since, limit=10),
        "unmatched_count": calls.count_unmatched(db.session, since),
        "mask_phone": mask_phone,
    }
    if partial_request("board-live"):
        return render_template("supervisor/_board_live.html", **context)
    return render_template("supervisor/board.html", **context)
