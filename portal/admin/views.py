"""Admin pages: users (create, edit, deactivate, reactivate, unlock, reset the password — the
temporary password shown once), teams, API tokens (create — shown once —, list, revoke), and
the audit log (read only, for admins and auditors)."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from wtforms.fields import SelectChoice

from portal import clock
from portal.admin import accounts, audit_log, teams
from portal.admin import users as admin_users
from portal.admin.forms import (
    AuditFilterForm,
    ConfirmForm,
    NewUserForm,
    TeamForm,
    TokenForm,
    UserDetailsForm,
)
from portal.auth import login_protection, passwords
from portal.extensions import db, partial_request
from portal.models import ApiToken, Team, User
from portal.models.base import utcnow
from portal.permissions import tokens as api_tokens
from portal.permissions.decorators import permission_required
from portal.permissions.roles import ROLE_LABELS

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/users")
@permission_required("admin.users")
def users():
    rows = admin_users.all_users(db.session)
    protection = login_protection.from_app(current_app)
    locked = {u.id for u in rows if protection.current_lock(u.username) is not None}
    return render_template("admin/users.html", users=rows, role_labels=ROLE_LABELS,
                           locked=locked)


def _user_form(form_class, user: User | None = None, fresh: bool = False):
    form = form_class(formdata=None, obj=user) if fresh else form_class(obj=user)
    form.role.choices = [SelectChoice(role, str(text)) for role, text in ROLE_LABELS.items()]
    form.team_id.choices = [SelectChoice("", _("No team"))] + [
        SelectChoice(str(t.id), t.name, render_kw={"translate": "no"})
        for t in teams.all_teams(db.session)]
    return form


def _details(form: UserDetailsForm) -> accounts.UserDetails:
    return accounts.UserDetails(
        full_name=form.full_name.data.strip(), role=form.role.data, email=form.email.data,
        team_id=form.team_id.data, cti_agent_id=form.cti_agent_id.data,
        phone_extension=form.phone_extension.data, region=form.region.data,
        language=form.language.data)


def _refuse(form, exc: accounts.AccountError) -> None:
    field = getattr(form, exc.field, None)
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        flash(exc.message, "error")


def _render_user(user: User, form=None, temporary: str | None = None, status: int = 200,
                 created: bool = False):
    protection = login_protection.from_app(current_app)
    return render_template(
        "admin/user_edit.html", user=user, form=form or _user_form(UserDetailsForm, user),
        action_form=ConfirmForm(), role_labels=ROLE_LABELS, temporary=temporary,
        created=created, lock=protection.current_lock(user.username),
        failures=protection.failures(user.username)), status


@bp.route("/users/new", methods=["GET", "POST"])
@permission_required("admin.users")
def new_user():
    form = _user_form(NewUserForm)
    if request.method == "GET":
        form.role.data = form.role.data or "agent"
        return render_template("admin/user_new.html", form=form)
    if form.validate_on_submit():
        try:
            user, temporary = accounts.create_user(
                db.session, current_user, form.username.data, _details(form),
                passwords.policy_from_app())
        except accounts.AccountError as exc:
            db.session.rollback()
            _refuse(form, exc)
        else:
            db.session.commit()
            # rendered, not redirected: the password must never sit in a session or a cookie
            return _render_user(user, temporary=temporary, status=201, created=True)
    return render_template("admin/user_new.html", form=form), 422


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@permission_required("admin.users")
def edit_user(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    if request.method == "GET":
        return _render_user(user)
    form = _user_form(UserDetailsForm, user)
    if form.validate_on_submit():
        try:
            changed = accounts.update_user(db.session, current_user, user, _details(form))
        except accounts.AccountError as exc:
            db.session.rollback()
            _refuse(form, exc)
        else:
            db.session.commit()
            flash(_("Changes to %(name)s saved.", name=user.full_name) if changed
                  else _("Nothing was changed."), "success" if changed else "info")
            return redirect(url_for("admin.edit_user", user_id=user.id))
    return _render_user(user, form=form, status=422)


def _user_action(user_id: int, operation, done_message):
    user = db.session.get(User, user_id) or abort(404)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        result = operation(user)
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _render_user(db.session.get(User, user_id), status=409)
    db.session.commit()
    if isinstance(result, str):  # a temporary password: shown once, never redirected
        return _render_user(user, temporary=result)
    flash(done_message(user), "success")
    return redirect(url_for("admin.edit_user", user_id=user.id))


@bp.post("/users/<int:user_id>/deactivate")
@permission_required("admin.users")
def deactivate_user(user_id: int):
    return _user_action(user_id, lambda u: accounts.deactivate(db.session, current_user, u),
                        lambda u: _("%(name)s can no longer sign in.", name=u.full_name))


@bp.post("/users/<int:user_id>/reactivate")
@permission_required("admin.users")
def reactivate_user(user_id: int):
    return _user_action(user_id, lambda u: accounts.reactivate(db.session, current_user, u),
                        lambda u: _("%(name)s can sign in again.", name=u.full_name))


@bp.post("/users/<int:user_id>/unlock")
@permission_required("admin.users")
def unlock_user(user_id: int):
    protection = login_protection.from_app(current_app)
    return _user_action(
        user_id, lambda u: accounts.unlock(db.session, current_user, u, protection),
        lambda u: _("%(name)s is unlocked and may sign in again.", name=u.full_name))


@bp.post("/users/<int:user_id>/reset-password")
@permission_required("admin.users")
def reset_password(user_id: int):
    policy = passwords.policy_from_app()
    return _user_action(
        user_id, lambda u: accounts.reset_password(db.session, current_user, u, policy), None)


# --- teams ---------------------------------------------------------------------------------------


def _team_form(team: Team | None = None):
    form = TeamForm(obj=team)
    form.supervisor_id.choices = [SelectChoice("", _("No supervisor"))] + [
        SelectChoice(str(u.id), f"{u.full_name} — {u.username}", render_kw={"translate": "no"})
        for u in teams.supervisors(db.session)]
    # people and team names, not the portal's words (a checkbox's label is its text)
    form.member_ids.choices = [
        SelectChoice(u.id, Markup('<span translate="no">%s</span>') % (
            f"{u.full_name} — {u.username}"
            + (f" · {u.team.name}" if u.team and u.team is not team else "")))
        for u in teams.possible_members(db.session)]
    if team is not None and request.method == "GET":
        form.member_ids.data = [u.id for u in team.members]
    return form


@bp.get("/teams")
@permission_required("admin.teams")
def teams_page():
    return render_template("admin/teams.html", teams=teams.all_teams(db.session))


@bp.route("/teams/new", methods=["GET", "POST"])
@permission_required("admin.teams")
def new_team():
    form = _team_form()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                team = teams.create_team(db.session, current_user, form.name.data,
                                         form.region.data, form.supervisor_id.data,
                                         form.member_ids.data)
            except accounts.AccountError as exc:
                db.session.rollback()
                _refuse(form, exc)
            else:
                db.session.commit()
                flash(_("Team %(name)s created.", name=team.name), "success")
                return redirect(url_for("admin.teams_page"))
        return render_template("admin/team_form.html", form=form, team=None), 422
    return render_template("admin/team_form.html", form=form, team=None)


@bp.route("/teams/<int:team_id>", methods=["GET", "POST"])
@permission_required("admin.teams")
def edit_team(team_id: int):
    team = db.session.get(Team, team_id) or abort(404)
    form = _team_form(team)
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                changed = teams.update_team(db.session, current_user, team, form.name.data,
                                            form.region.data, form.supervisor_id.data,
                                            form.member_ids.data)
            except accounts.AccountError as exc:
                db.session.rollback()
                _refuse(form, exc)
            else:
                db.session.commit()
                flash(_("Team %(name)s saved.", name=team.name) if changed
                      else _("Nothing was changed."), "success" if changed else "info")
                return redirect(url_for("admin.teams_page"))
        return render_template("admin/team_form.html", form=form, team=team), 422
    return render_template("admin/team_form.html", form=form, team=team)


# --- the audit log -------------------------------------------------------------------------------


def _audit_filters():
    form = AuditFilterForm(request.args)
    form.action.choices = [SelectChoice("", _("Every kind"))] + [
        SelectChoice(a, audit_log.action_words(a))
        if audit_log.action_words(a) else SelectChoice(a, a, render_kw={"translate": "no"})
        for a in audit_log.actions(db.session)]
    if request.args and not form.validate():
        return form, None
    return form, audit_log.AuditFilters(
        user=form.user.data or "", cif=form.cif.data or "", action=form.action.data or "",
        date_from=form.date_from.data, date_to=form.date_to.data)


@bp.get("/audit")
@permission_required("audit.view")
def audit_log_page():
    form, filters = _audit_filters()
    if filters is None:
        return render_template("admin/audit_log.html", form=form, page=None, filters=None,
                               log=audit_log), 422
    page = audit_log.page(db.session, filters, request.args.get("before"))
    return render_template("admin/audit_log.html", form=form, page=page, filters=filters,
                           log=audit_log)


@bp.get("/audit.csv")
@permission_required("audit.view")
def audit_log_csv():
    _form, filters = _audit_filters()
    if filters is None:
        abort(422)
    name = f"audit-log-{clock.bank_today().isoformat()}.csv"
    return Response(stream_with_context(audit_log.csv_lines(db.session, filters)),
                    mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _token_form(fresh: bool = False) -> TokenForm:
    form = TokenForm(formdata=None) if fresh else TokenForm()
    active = admin_users.active_users(db.session)
    form.user_id.choices = [SelectChoice("", _("System (no user)"))] + [
        SelectChoice(str(u.id),
                     f"{u.full_name} — {u.username} ({ROLE_LABELS.get(u.role, u.role)})",
                     render_kw={"translate": "no"})  # a person, not the portal's words
        for u in active
    ]
    return form


def _render_tokens(form: TokenForm, new_token: str | None = None, created=None, status=200):
    tokens = api_tokens.list_tokens(db.session)
    return render_template("admin/tokens.html", form=form, tokens=tokens, new_token=new_token,
                           created=created, state=api_tokens.token_state), status


@bp.get("/tokens")
@permission_required("admin.tokens")
def tokens():
    return _render_tokens(_token_form())


@bp.post("/tokens")
@permission_required("admin.tokens")
def create_token():
    form = _token_form()
    if not form.validate_on_submit():
        return _render_tokens(form, status=422)
    user = db.session.get(User, int(form.user_id.data)) if form.user_id.data else None
    days = int(form.expires_in_days.data) if form.expires_in_days.data else None
    try:
        token, raw = api_tokens.create_token(
            db.session, name=form.name.data, scopes=form.scopes.data, user=user,
            created_by=current_user, expires_at=utcnow() + timedelta(days=days) if days else None,
        )
    except api_tokens.TokenError as exc:
        db.session.rollback()
        form.scopes.errors = [*form.scopes.errors, str(exc)]
        return _render_tokens(form, status=422)
    db.session.commit()
    # Rendered, not redirected: the raw token must never sit in a session or a flash cookie.
    return _render_tokens(_token_form(fresh=True), new_token=raw, created=token, status=201)


@bp.post("/tokens/<int:token_id>/revoke")
@permission_required("admin.tokens")
def revoke_token(token_id: int):
    token = db.session.get(ApiToken, token_id) or abort(404)
    try:
        api_tokens.revoke_token(db.session, token, revoked_by=current_user)
        db.session.commit()
        message = _("Token “%(name)s” (%(prefix)s…) revoked.", name=token.name,
                    prefix=token.prefix)
        category = "success"
    except api_tokens.TokenError as exc:
        message, category = str(exc), "warning"
    if partial_request():
        return render_template("admin/_token_row.html", token=token,
                               state=api_tokens.token_state, message=message, revoked=True)
    flash(message, category)
    return redirect(url_for("admin.tokens"))
