"""Login and logout pages."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from portal import i18n
from portal.auth import login_protection, operations, passwords, sessions
from portal.auth.forms import ChangePasswordForm, LanguageForm, LoginForm
from portal.extensions import db, limiter
from portal.permissions.decorators import permission_required, public, safe_next

bp = Blueprint("auth", __name__, url_prefix="/auth")
# what people type: /login and /logout lead to the pages above
aliases = Blueprint("auth_aliases", __name__)


def _login_rate_limit() -> str:
    return current_app.config.get("LOGIN_RATE_LIMIT", "30 per minute")


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_rate_limit, methods=["POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    error, locked, status = None, False, 200
    if form.validate_on_submit():
        outcome = operations.attempt_login(
            db.session, form.username.data, form.password.data,
            login_protection.from_app(current_app),
        )
        if outcome.ok:
            sessions.start()
            login_user(outcome.user)
            session.permanent = True
            if outcome.user.must_change_password:
                flash(_("Choose your own password before you continue."), "warning")
                return redirect(url_for("auth.change_password",
                                        next=safe_next(form.next.data) or None))
            flash(_("Welcome, %(name)s.", name=outcome.user.full_name), "success")
            return redirect(safe_next(form.next.data) or url_for("main.home"))
        error, locked = str(outcome.message), outcome.locked
        status = 429 if outcome.locked else 401
    elif request.method == "POST":
        status = 422
    expired = request.args.get("expired") == "1" and request.method == "GET"
    return render_template("auth/login.html", form=form, error=error, locked=locked,
                           expired=expired), status


@bp.route("/logout", methods=["GET", "POST"])
@permission_required("portal.access")
def logout():
    if request.method == "GET":  # an address typed or followed: ask, a GET never signs out
        return render_template("auth/logout.html")
    logout_user()
    sessions.revoke_current()  # a copy of this cookie no longer signs anyone in
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@permission_required("portal.access")
def change_password():
    """A user changes their own password; after an admin's reset, every page leads here until
    they have (portal/permissions/decorators.py)."""
    form = ChangePasswordForm()
    policy = passwords.policy_from_app()
    status = 200
    if form.validate_on_submit():
        try:
            passwords.change_own_password(db.session, current_user, form.current_password.data,
                                          form.new_password.data, policy)
        except passwords.PasswordError as exc:
            db.session.rollback()
            getattr(form, exc.field).errors = [*getattr(form, exc.field).errors, exc.message]
            status = 422
        else:
            db.session.commit()
            flash(_("Your password has been changed."), "success")
            return redirect(safe_next(request.args.get("next")) or url_for("main.home"))
    elif request.method == "POST":
        status = 422
    return render_template("auth/change_password.html", form=form, policy=policy,
                           forced=current_user.must_change_password), status


@bp.post("/language")
@public  # the sign-in page has the menu too; a signed-in user's choice is kept on the user
def language():
    """Back to the page the menu was on: ``next`` (a signed-in page), or the sign-in page
    keeping where it leads."""
    form = LanguageForm()
    if form.validate_on_submit():
        session[i18n.SESSION_KEY] = form.language.data
        if current_user.is_authenticated:
            operations.set_language(db.session, current_user, form.language.data)
            db.session.commit()
    target = safe_next(form.next.data)
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=target))
    return redirect(target or url_for("main.home"))


def _moved(endpoint: str, **values):
    """302 for a page asked for by address; 307 keeps a form post a post."""
    return redirect(url_for(endpoint, **values), 307 if request.method == "POST" else 302)


@aliases.route("/login", methods=["GET", "POST"], strict_slashes=False)
@public
def login_alias():
    return _moved("auth.login", next=safe_next(request.args.get("next")))


@aliases.route("/logout", methods=["GET", "POST"], strict_slashes=False)
@public
def logout_alias():
    return _moved("auth.logout")
