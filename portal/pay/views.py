"""``/pay/<token>``: the page a pay link opens, and its code as a PNG to save.

Thin: read the token (portal.messages.vietqr.read_pay_token), find the loan, render. A token
that was altered or belongs to no loan is a 404 page, an expired one a 410 page, both saying
what to do next; the language is the link's, and the visitor can switch it (``?lang=``)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import force_locale
from sqlalchemy import select

from portal import signing
from portal.extensions import db, limiter
from portal.i18n import LANGUAGES, default_language
from portal.messages import vietqr
from portal.models import Loan
from portal.permissions.decorators import public

bp = Blueprint("pay", __name__, url_prefix="/pay")


def _rate_limit() -> str:
    return current_app.config.get("PAY_PAGE_RATE_LIMIT") or "30 per minute"


def _language(link: vietqr.PayLink | None) -> str:
    """The visitor's choice (``?lang=``), else the link's language, else the bank's."""
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return link.language if link is not None else default_language()


def _link(token: str) -> tuple[vietqr.PayLink | None, str | None, Loan | None]:
    """(link, problem, loan): problem is "invalid" or "expired" when the page cannot show."""
    try:
        link = vietqr.read_pay_token(token)
    except signing.LinkError as exc:
        try:  # an expired link still says its language
            known = vietqr.pay_link_of(exc.value) if exc.value else None
        except signing.LinkError:
            known = None
        return known, exc.code, None
    loan = db.session.scalar(select(Loan).where(Loan.account_number == link.account_number))
    if loan is None or loan.currency != "VND":  # VietQR pays dong only
        return link, "invalid", None
    return link, None, loan


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of referrers
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/<token>")
@limiter.limit(_rate_limit)
@public  # a customer's link: the signed token is the permission
def page(token: str):
    link, problem, loan = _link(token)
    language = _language(link)
    with force_locale(language):
        if problem is not None:
            html = render_template("pay/problem.html", problem=problem, language=language)
            return _no_store(current_app.make_response(
                (html, 410 if problem == "expired" else 404)))
        code = vietqr.pay_code(loan.account_number, link.amount)
        html = render_template("pay/page.html", code=code, loan=loan, link=link, token=token,
                               language=language, languages=LANGUAGES)
    return _no_store(current_app.make_response(html))


@bp.get("/<token>/vietqr.png")
@limiter.limit(_rate_limit)
@public  # as the page
def image(token: str):
    link, problem, loan = _link(token)
    if problem is not None:
        abort(410 if problem == "expired" else 404)
    code = vietqr.pay_code(loan.account_number, link.amount)
    response = Response(code.png(), mimetype="image/png")
    response.headers["Content-Disposition"] = \
        f'attachment; filename="vietqr-{code.reference}.png"'
    return _no_store(response)
