"""Messages: the templates pages (supervisors, admins) with a preview on a real account, the
case view's one-off message card (agents, field agents, supervisors), and the ops page of the
message channels (SMS gateway, SMTP, letters) with the retry of failed messages.
Thin: parse the form, call portal.messages operations, render."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from integrations.sms.segments import sms_segments
from portal import clock
from portal.cases.case_view import open_accounts
from portal.cases.contact_rules import get_message_rules, message_hold_reason
from portal.extensions import db
from portal.i18n import format_datetime
from portal.labels import label
from portal.messages import operations, templates_admin
from portal.messages.forms import SendForm, TemplateForm
from portal.messages.rendering import VARIABLES, render, template_variables
from portal.models import Card, Customer, Loan, Message, MessageTemplate
from portal.models.messages import MESSAGE_CHANNELS
from portal.permissions.decorators import permission_required
from portal.schedules import Jobs

log = logging.getLogger(__name__)
MAX_INT = 2**31 - 1  # a template id typed into the form beyond the column's range names none
bp = Blueprint("messages", __name__, url_prefix="/messages")
ops_bp = Blueprint("messages_ops", __name__, url_prefix="/ops/messages")


def channel_name(channel: str) -> str:
    return {"sms": _("SMS"), "email": _("E-mail"), "letter": _("Letter")}.get(channel, channel)


def _segments(template_or_text) -> dict | None:
    text = template_or_text if isinstance(template_or_text, str) else template_or_text.body_vi
    encoding, segments, chars = sms_segments(text or "")
    return {"encoding": encoding, "segments": segments, "chars": chars}


# --- templates (supervisors, admins) ---------------------------------------------------------


def _account_of(number: str | None) -> tuple[str, str] | None:
    """(cif, account) of a loan or card number, or None."""
    number = (number or "").strip()
    if not number or len(number) > 32:
        return None
    cif = db.session.scalar(select(Loan.cif).where(Loan.account_number == number)) or \
        db.session.scalar(select(Card.cif).where(Card.contract_number == number))
    return (cif, number) if cif else None


def _sample_account() -> str | None:
    return db.session.scalar(select(Loan.account_number).where(Loan.due_amount > 0)
                             .order_by(Loan.dpd.desc(), Loan.account_number).limit(1))


def _preview(values: dict, account: str | None) -> dict:
    """What the template being edited says for ``account`` (vi and en), or the errors."""
    errors: dict[str, str] = {}
    found = _account_of(account)
    if account and found is None:
        errors["preview_account"] = _("No loan or card with this number.")
    draft = MessageTemplate(channel=values.get("channel") or "sms",
                            subject_vi=values.get("subject_vi"),
                            subject_en=values.get("subject_en"),
                            body_vi=values.get("body_vi") or "",
                            body_en=values.get("body_en") or "")
    rendered = {}
    if found:
        customer = db.session.scalar(select(Customer).where(Customer.cif == found[0]))
        for language in ("vi", "en"):
            variables = template_variables(db.session, found[0], found[1], language)
            subject, body = render(draft, variables, language)
            rendered[language] = {"subject": subject, "body": body,
                                  "segments": _segments(body) if draft.channel == "sms"
                                  else None}
        rendered["customer"] = customer
    return {"rendered": rendered, "preview_errors": errors, "preview_account": account or ""}


def _template_page(template: MessageTemplate | None, values: dict,
                   errors: dict | None = None, status: int = 200):
    account = values.get("preview_account") or _sample_account()
    return render_template(
        "messages/template_edit.html", template=template, input=values, errors=errors or {},
        channels=MESSAGE_CHANNELS, channel_name=channel_name, variables=VARIABLES,
        **_preview(values, account)), status


def _values(template: MessageTemplate) -> dict:
    return {name: getattr(template, name) or "" for name in
            ("code", "channel", "name", "subject_vi", "subject_en", "body_vi", "body_en")} | {
        "include_vietqr": "1" if template.include_vietqr else ""}


@bp.get("/templates")
@permission_required("messages.templates")
def templates():
    rows = templates_admin.templates(db.session)
    return render_template("messages/templates.html", templates=rows,
                           channel_name=channel_name,
                           segments={t.id: _segments(t) for t in rows if t.channel == "sms"})


@bp.get("/templates/new")
@permission_required("messages.templates")
def new_template():
    channel = request.args.get("channel")
    return _template_page(None, {"channel": channel if channel in MESSAGE_CHANNELS else "sms"})


@bp.post("/templates/new")
@permission_required("messages.templates")
def create_template():
    form = TemplateForm()
    form.validate()
    values = form.submitted()
    try:
        template = templates_admin.save_template(db.session, current_user, None, values)
        db.session.commit()
    except templates_admin.TemplateError as exc:
        db.session.rollback()
        return _template_page(None, values, exc.errors, exc.status)
    flash(_("Template %(code)s saved.", code=template.code), "success")
    return redirect(url_for("messages.edit_template", template_id=template.id))


def _template(template_id: int) -> MessageTemplate:
    template = db.session.get(MessageTemplate, template_id)
    if template is None:
        abort(404)
    return template


@bp.get("/templates/<int:template_id>")
@permission_required("messages.templates")
def edit_template(template_id: int):
    template = _template(template_id)
    values = _values(template)
    values["preview_account"] = request.args.get("account") or ""
    return _template_page(template, values)


@bp.post("/templates/<int:template_id>")
@permission_required("messages.templates")
def update_template(template_id: int):
    template = _template(template_id)
    form = TemplateForm()
    form.validate()
    values = {**_values(template), **form.submitted()}
    values["include_vietqr"] = form.submitted().get("include_vietqr", "")
    try:
        templates_admin.save_template(db.session, current_user, template, values)
        db.session.commit()
    except templates_admin.TemplateError as exc:
        db.session.rollback()
        return _template_page(template, values, exc.errors, exc.status)
    flash(_("Template %(code)s saved.", code=template.code), "success")
    return redirect(url_for("messages.edit_template", template_id=template.id))


@bp.post("/templates/<int:template_id>/active")
@permission_required("messages.templates")
def toggle_template(template_id: int):
    template = _template(template_id)
    templates_admin.set_active(db.session, current_user, template, not template.active)
    db.session.commit()
    flash(_("%(code)s is in use again.", code=template.code) if template.active else
          _("%(code)s retired: no new message uses it.", code=template.code), "success")
    return redirect(url_for("messages.templates"))


@bp.post("/templates/preview")
@permission_required("messages.templates")
def preview_template():
    """The preview card of the template editor, for what is typed now (HTMX)."""
    form = TemplateForm()
    values = form.submitted()
    if not values.get("channel") and request.form.get("template_id", "").isdecimal() \
            and len(request.form["template_id"]) < 10:
        values["channel"] = _template(int(request.form["template_id"])).channel
    return render_template("messages/_template_preview.html", input=values,
                           channel_name=channel_name,
                           **_preview(values, values.get("preview_account")))


# --- the case view's one-off message ---------------------------------------------------------


def _customer(cif: str) -> Customer:
    customer = db.session.scalar(select(Customer).where(Customer.cif == cif))
    if customer is None:
        abort(404)
    return customer


def _points(cif: str) -> dict[str, list]:
    return {channel: operations.contact_points(db.session, cif, channel)
            for channel in MESSAGE_CHANNELS}


def _send_context(cif: str, values: dict, errors: dict | None = None, **extra) -> dict:
    customer = _customer(cif)
    templates = templates_admin.templates(db.session, active_only=True)
    accounts = open_accounts(db.session, cif)
    values.setdefault("language", "vi")
    if not values.get("account_number") and accounts:
        values["account_number"] = accounts[0][0]
    context = {"customer": customer, "templates": templates, "accounts": accounts,
               "points": _points(cif), "input": values, "errors": errors or {},
               "channel_name": channel_name, "rules": get_message_rules(db.session)}
    context.update(_send_preview(cif, values, templates))
    context.update(extra)
    return context


def _point_choice(raw: str | None) -> tuple[str, int] | None:
    channel, _sep, number = (raw or "").partition(":")
    if channel in MESSAGE_CHANNELS and number.isdecimal() and len(number) < 19:
        return channel, int(number)
    return None


def _send_preview(cif: str, values: dict, templates: list[MessageTemplate]) -> dict:
    """The chosen template rendered for the customer, and whether the rules would hold it
    now (and why), before the agent sends it."""
    template_id = values.get("template_id") or ""
    template = next((t for t in templates if str(t.id) == str(template_id)), None)
    if template is None:
        return {"preview": None}
    language = values.get("language") if values.get("language") in ("vi", "en") else "vi"
    variables = template_variables(db.session, cif, values.get("account_number") or None,
                                   language)
    subject, body = render(template, variables, language)
    draft = Message(cif=cif, channel=template.channel, body=body)
    choice = _point_choice(values.get("contact_point"))
    if choice and choice[0] == template.channel:
        point = next((p for p in operations.contact_points(db.session, cif, choice[0])
                      if p.id == choice[1]), None)
    else:
        point = operations.default_contact_point(db.session, cif, template.channel)
    operations.set_contact_point(draft, point)
    reason = message_hold_reason(db.session, draft, clock.now())
    return {"preview": {"template": template, "subject": subject, "body": body,
                        "segments": _segments(body) if template.channel == "sms" else None,
                        "recipient": draft.recipient, "hold_reason": reason}}


@bp.get("/cases/<cif>/card")
@permission_required("messages.send")
def send_card(cif: str):
    return render_template("messages/_send_card.html", **_send_context(cif, {}))


@bp.post("/cases/<cif>/preview")
@permission_required("messages.send")
def send_preview(cif: str):
    form = SendForm()
    return render_template("messages/_send_card.html",
                           **_send_context(cif, form.submitted()))


def _enqueue_dispatch(message_id: int) -> None:
    """Send it now through a worker (the cron dispatcher takes it within a minute anyway)."""
    from portal.queues import enqueue

    try:
        enqueue("integrations", Jobs.DISPATCH_MESSAGE, message_id)
    except Exception:  # Redis down: the minute's dispatcher sends it
        log.warning("could not enqueue the message's dispatch", exc_info=True)


@bp.post("/cases/<cif>/send")
@permission_required("messages.send")
def send(cif: str):
    _customer(cif)
    form = SendForm()
    form.validate()
    values = form.submitted()
    errors: dict[str, str] = {}
    template = db.session.get(MessageTemplate, form.template_id.data) \
        if form.template_id.data and form.template_id.data <= MAX_INT else None
    if template is None or not template.active:
        errors["template_id"] = _("Choose a template.")
    accounts = [number for number, _label in open_accounts(db.session, cif)]
    account = values.get("account_number") or None
    if account is not None and account not in accounts:
        errors["account_number"] = _("Choose one of the customer's accounts.")
    language = values.get("language") or "vi"
    if language not in ("vi", "en"):
        errors["language"] = _("Choose Vietnamese or English.")
    choice = _point_choice(values.get("contact_point"))
    if values.get("contact_point") and (choice is None or template is not None
                                        and choice[0] != template.channel):
        errors["contact_point"] = _("Choose a contact point of the template's channel.")
    if errors:
        return render_template("messages/_send_card.html",
                               **_send_context(cif, values, errors)), 422
    try:
        message = operations.queue_message(
            db.session, cif=cif, account_number=account, channel=template.channel,
            template=template, language=language, actor=current_user, source="manual",
            contact_point_id=choice[1] if choice else None)
        db.session.commit()
    except operations.MessageError as exc:
        db.session.rollback()
        return render_template("messages/_send_card.html", **_send_context(
            cif, values, {"contact_point": str(exc)})), 422
    if message.status == "held" and message.next_attempt_at is not None:  # quiet hours
        notice = ("held", _("Quiet hours: it goes out at %(time)s.",
                            time=format_datetime(message.next_attempt_at)))
    elif message.status == "held":
        notice = ("held", _("Not sent: %(reason)s.",
                            reason=label(message.hold_reason, "hold_reason")))
    elif message.channel == "letter":
        notice = ("queued", _("The letter goes out with the next print batch."))
    else:
        _enqueue_dispatch(message.id)
        notice = ("queued", _("Queued: it goes out within a minute."))
    response = current_app.make_response(render_template(
        "messages/_send_card.html", **_send_context(cif, {}, notice=notice,
                                                    sent_message=message)))
    response.headers["HX-Trigger"] = "case-updated"
    return response


# --- ops -------------------------------------------------------------------------------------


@ops_bp.get("")
@permission_required("ops.integrations")
def index():
    now = clock.now()
    return render_template("messages/ops.html",
                           channels=operations.channel_health(db.session, now - timedelta(days=1)),
                           failed=operations.failed_messages(db.session),
                           channel_name=channel_name)


@ops_bp.get("/summary")
@permission_required("ops.integrations")
def summary():
    """The channels' cards, loaded into the integrations page (HTMX)."""
    return render_template("messages/_channel_cards.html",
                           channels=operations.channel_health(db.session,
                                                              clock.now() - timedelta(days=1)),
                           compact=True)


@ops_bp.post("/<int:message_id>/retry")
@permission_required("ops.actions")
def retry(message_id: int):
    message = operations.retry_failed(db.session, message_id, current_user)
    if message is None:
        db.session.rollback()
        flash(_("That message is not failed: nothing to retry."), "error")
    else:
        db.session.commit()
        if message.channel != "letter":
            _enqueue_dispatch(message.id)
        flash(_("Message #%(id)d queued again.", id=message.id), "success")
    return redirect(url_for("messages_ops.index"))
