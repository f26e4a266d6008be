"""``POST /cases/<cif>/refresh`` (``cases.refresh_customer``): the case view's "Refresh from bank
systems" button. HTMX gets the change panel; a plain form post gets the case page with it."""

from __future__ import annotations

from flask import current_app, render_template
from flask_login import current_user
from markupsafe import Markup

from portal import clock
from portal.cases.views import bp, load_case, render_case
from portal.extensions import db, partial_request
from portal.logging import get_correlation_id
from portal.permissions.decorators import permission_required
from portal.refresh import operations as refresh


@bp.post("/<cif>/refresh")
@permission_required("customers.refresh")
def refresh_customer(cif: str):
    """Fetch the customer's latest data from T24, W4 and LOS now; the panel says what changed,
    per source, or why a source was refused."""
    v = load_case(cif)
    try:
        outcome = refresh.refresh(current_app._get_current_object(), db.session, cif,
                                  user=current_user, now=clock.now(),
                                  correlation_id=get_correlation_id())
    except refresh.RateLimited as exc:
        db.session.commit()  # the audit row of the refusal
        response = current_app.make_response((render_template(
            "cases/_refresh_panel.html", v=v, outcome=None, refusal=str(exc),
            refresh=refresh), 422 if partial_request() else 429))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    db.session.commit()
    panel = render_template("cases/_refresh_panel.html", v=v, outcome=outcome, refusal=None,
                            refresh=refresh)
    if not partial_request():
        return render_case(load_case(cif), refresh_panel=Markup(panel))
    response = current_app.make_response(panel)
    if outcome.applied:
        response.headers["HX-Trigger"] = "case-updated"
    return response
