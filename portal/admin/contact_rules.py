"""Admin: the bank's contact rules (window, call cap), the rules of messages (sending hours per
channel, caps, verified numbers only), the promise-to-pay horizon and the payment plan
limits."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, TimeField
from wtforms.validators import InputRequired, NumberRange, ValidationError

from portal.admin.views import bp
from portal.cases import contact_rules as rules_service
from portal.cases.contact_rules import ContactRules, MessageRules, PlanRules, PromiseRules
from portal.extensions import db
from portal.models import AppSetting, User
from portal.permissions.decorators import permission_required


class ContactRulesForm(FlaskForm):
    window_start = TimeField(_l("Contact window opens"), validators=[
        InputRequired(_l("Enter the time calls and visits may start, e.g. 07:00."))])
    window_end = TimeField(_l("Contact window closes"), validators=[
        InputRequired(_l("Enter the time calls and visits must stop, e.g. 21:00."))])
    max_call_attempts = IntegerField(_l("Call attempts allowed"), validators=[
        InputRequired(_l("Enter a number of calls.")),
        NumberRange(1, 100, _l("Enter a number from 1 to 100."))])
    attempt_window_days = IntegerField(_l("Per rolling period of (days)"), validators=[
        InputRequired(_l("Enter a number of days.")),
        NumberRange(1, 90, _l("Enter a number of days from 1 to 90."))])
    promise_max_days = IntegerField(_l("Promise date at most (days ahead)"), validators=[
        InputRequired(_l("Enter a number of days.")),
        NumberRange(0, 365, _l("Enter a number of days from 0 to 365."))])
    plan_min_instalments = IntegerField(_l("Fewest instalments"), validators=[
        InputRequired(_l("Enter a number of instalments.")),
        NumberRange(1, 60, _l("Enter a number from 1 to 60."))])
    plan_max_instalments = IntegerField(_l("Most instalments"), validators=[
        InputRequired(_l("Enter a number of instalments.")),
        NumberRange(1, 60, _l("Enter a number from 1 to 60."))])
    plan_first_within_days = IntegerField(_l("First instalment within (days)"), validators=[
        InputRequired(_l("Enter a number of days.")),
        NumberRange(0, 365, _l("Enter a number of days from 0 to 365."))])
    plan_max_days = IntegerField(_l("Plan length at most (days)"), validators=[
        InputRequired(_l("Enter a number of days.")),
        NumberRange(1, 1830, _l("Enter a number of days from 1 to 1830."))])
    plan_min_amount = IntegerField(_l("Smallest instalment (₫)"), validators=[
        InputRequired(_l("Enter an amount in đồng, digits only.")),
        NumberRange(1, 10**12, _l("Enter an amount from 1 đồng."))])
    plan_break_after_missed = IntegerField(_l("Missed instalments that break a plan"),
                                           validators=[
        InputRequired(_l("Enter a number of instalments.")),
        NumberRange(1, 60, _l("Enter a number from 1 to 60."))])

    sms_send_from = TimeField(_l("SMS from"), validators=[
        InputRequired(_l("Enter the time SMS may start, e.g. 08:00."))])
    sms_send_until = TimeField(_l("SMS until"), validators=[
        InputRequired(_l("Enter the time SMS must stop, e.g. 20:00."))])
    email_send_from = TimeField(_l("E-mail from"), validators=[
        InputRequired(_l("Enter the time e-mails may start, e.g. 07:00."))])
    email_send_until = TimeField(_l("E-mail until"), validators=[
        InputRequired(_l("Enter the time e-mails must stop, e.g. 21:00."))])
    sms_cap = IntegerField(_l("SMS per customer"), validators=[
        InputRequired(_l("Enter a number of messages (0: no limit).")),
        NumberRange(0, 100, _l("Enter a number from 0 to 100."))])
    sms_cap_days = IntegerField(_l("SMS period (days)"), validators=[
        InputRequired(_l("Enter a number of days.")),
        NumberRange(1, 90, _l("Enter a number of days from 1 to 90."))])
    email_cap = IntegerField(_l("E-mails per customer"), validators=[
        InputRequired(_l("Enter a number of messages (0: no limit).")),
        NumberRange(0, 100, _l("Enter a number from 0 to 100."))])
    email_cap_days = IntegerField(_l("E-mail period (days)"), validators=[
        InputRequired(_l("Enter a number of days.")),
        NumberRange(1, 90, _l("Enter a number of days from 1 to 90."))])
    letter_cap = IntegerField(_l("Letters per customer"), validators=[
        InputRequired(_l("Enter a number of messages (0: no limit).")),
        NumberRange(0, 100, _l("Enter a number from 0 to 100."))])
    letter_cap_days = IntegerField(_l("Letter period (days)"), validators=[
        InputRequired(_l("Enter a number of days.")),
        NumberRange(1, 365, _l("Enter a number of days from 1 to 365."))])
    require_verified_phone = BooleanField(_l("SMS only to verified numbers"))

    def validate_sms_send_until(self, field):
        if self.sms_send_from.data and field.data and field.data <= self.sms_send_from.data:
            raise ValidationError(_("The hours must end after they start."))

    def validate_email_send_until(self, field):
        if self.email_send_from.data and field.data and field.data <= self.email_send_from.data:
            raise ValidationError(_("The hours must end after they start."))

    def validate_plan_max_instalments(self, field):
        if self.plan_min_instalments.data and field.data is not None \
                and field.data < self.plan_min_instalments.data:
            raise ValidationError(_("At least the fewest instalments."))

    def validate_plan_max_days(self, field):
        if self.plan_first_within_days.data is not None and field.data is not None \
                and field.data < self.plan_first_within_days.data:
            raise ValidationError(_("At least the days to the first instalment."))

    def validate_window_end(self, field):
        if self.window_start.data and field.data and field.data <= self.window_start.data:
            raise ValidationError(_("The window must close after it opens."))


def _render(form: ContactRulesForm, status: int = 200):
    settings = {row.key: row for row in db.session.scalars(
        select(AppSetting).where(AppSetting.key.in_(
            (rules_service.CONTACT_RULES_KEY, rules_service.PROMISE_RULES_KEY,
             rules_service.PLAN_RULES_KEY, rules_service.MESSAGE_RULES_KEY))))}
    last = max(settings.values(), key=lambda r: r.updated_at, default=None)
    changed_by = db.session.get(User, last.updated_by_id) if last and last.updated_by_id else None
    return render_template(
        "admin/contact_rules.html", form=form, last_change=last, changed_by=changed_by,
        defaults=ContactRules(), promise_defaults=PromiseRules(), plan_defaults=PlanRules(),
        current=rules_service.get_contact_rules(db.session),
        current_promise=rules_service.get_promise_rules(db.session),
        current_plan=rules_service.get_plan_rules(db.session),
        message_defaults=MessageRules(),
        current_messages=rules_service.get_message_rules(db.session),
    ), status


@bp.get("/contact-rules")
@permission_required("admin.workflow")
def contact_rules():
    rules = rules_service.get_contact_rules(db.session)
    promise = rules_service.get_promise_rules(db.session)
    plan = rules_service.get_plan_rules(db.session)
    messages = rules_service.get_message_rules(db.session)
    form = ContactRulesForm(formdata=None, **vars(messages), window_start=rules.window_start,
                            window_end=rules.window_end,
                            max_call_attempts=rules.max_call_attempts,
                            attempt_window_days=rules.attempt_window_days,
                            promise_max_days=promise.max_days,
                            **{f"plan_{name}": value for name, value in plan.as_json().items()})
    return _render(form)


@bp.post("/contact-rules")
@permission_required("admin.workflow")
def save_contact_rules():
    form = ContactRulesForm()
    if not form.validate_on_submit():
        return _render(form, status=422)
    rules_service.save_contact_rules(db.session, ContactRules(
        window_start=form.window_start.data.replace(second=0, microsecond=0),
        window_end=form.window_end.data.replace(second=0, microsecond=0),
        max_call_attempts=form.max_call_attempts.data,
        attempt_window_days=form.attempt_window_days.data,
    ), current_user)
    rules_service.save_promise_rules(db.session, PromiseRules(max_days=form.promise_max_days.data),
                                     current_user)
    rules_service.save_plan_rules(db.session, PlanRules(**{
        name: getattr(form, f"plan_{name}").data for name in PlanRules().as_json()}),
        current_user)
    rules_service.save_message_rules(db.session, MessageRules(**{
        name: (value.replace(second=0, microsecond=0) if hasattr(value, "second") else value)
        for name, value in ((name, getattr(form, name).data)
                            for name in vars(MessageRules()))}), current_user)
    db.session.commit()
    flash(_("Contact rules saved. They apply to the next call, visit or message."), "success")
    return redirect(url_for("admin.contact_rules"))
