"""The Feature flags page of the ops area (routes on the ops blueprint): every known flag with
its state, the teams it is on for and its last change (who, when); a form per flag for the
users who may switch them (``ops.flags``). An unknown flag's address answers 404 with its
name."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.extensions import db
from portal.flags import operations
from portal.flags.registry import FLAGS, UnknownFlag
from portal.models import Team
from portal.ops.flag_forms import MODE_LABELS, FlagForm
from portal.ops.views import bp
from portal.permissions.decorators import permission_required
from portal.web import render_error


def _teams() -> list[Team]:
    return list(db.session.scalars(select(Team).order_by(Team.name)))


def _page(forms: dict[str, FlagForm] | None = None, status: int = 200):
    teams = _teams()
    states = operations.states(db.session)
    forms = forms or {}
    for name, current in states.items():
        if name not in forms:
            forms[name] = FlagForm(prefix=name, teams=teams, formdata=None,
                                   data={"mode": current.mode,
                                         "teams": sorted(current.team_ids)})
    team_names = {team.id: team.name for team in teams}
    rows = [{"flag": FLAGS[name], "state": states[name], "form": forms[name],
             "teams": sorted(team_names.get(t, str(t)) for t in states[name].team_ids),
             "mode_label": MODE_LABELS[states[name].mode]}
            for name in FLAGS]
    return render_template("ops/flags.html", rows=rows,
                           changes=operations.last_changes(db.session)), status


@bp.get("/ops/flags")
@permission_required("ops.integrations")
def flags_page():
    return _page()


@bp.post("/ops/flags/<name>")
@permission_required("ops.flags")
def set_flag(name: str):
    if name not in FLAGS:
        return render_error(404, _("There is no feature flag %(name)s. The known flags are: "
                                   "%(known)s.", name=name, known=", ".join(sorted(FLAGS))))
    form = FlagForm(prefix=name, teams=_teams())
    if not form.validate():
        return _page({name: form}, status=400)
    try:
        changed = operations.set_flag(db.session, name, form.mode.data, form.teams.data,
                                      current_user)
    except (UnknownFlag, ValueError) as exc:  # a team deleted meanwhile
        db.session.rollback()
        return render_error(400, str(exc))
    db.session.commit()
    label = FLAGS[name].label
    if changed:
        flash(_("%(feature)s: %(state)s.", feature=label,
                state=MODE_LABELS[form.mode.data]), "success")
    else:
        flash(_("%(feature)s was already so; nothing changed.", feature=label), "info")
    return redirect(url_for("ops.flags_page") + f"#flag-{name}", code=303)
