"""Admin pages: the user list, and API tokens (create — shown once —, list, revoke)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields import SelectChoice

from portal.admin import users as admin_users
from portal.admin.forms import TokenForm
from portal.extensions import db, partial_request
from portal.models import ApiToken, User
from portal.models.base import utcnow
from portal.permissions import tokens as api_tokens
from portal.permissions.decorators import permission_required
from portal.permissions.roles import ROLE_LABELS

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/users")
@permission_required("admin.users")
def users():
    rows = admin_users.all_users(db.session)
    return render_template("admin/users.html", users=rows, role_labels=ROLE_LABELS)


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
