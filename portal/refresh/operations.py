"""Refresh one customer now (the case view's button and ``flask cases refresh-customer``): rate
limits on the product clock, the refresh itself (integrations/refresh.py: W4 and LOS fetched,
applied through the daily sync's mapping, change capture and events), the audit row, and what
the change panel shows.

Limits (config): one refresh of a customer per ``REFRESH_CUSTOMER_MINUTES`` (counted from a
refresh in which a source answered) and ``REFRESH_USER_PER_MINUTE`` refreshes per user and
minute. Both live in Redis, keyed and compared on ``portal.clock`` (so a test sets TEST_CLOCK
and the limits follow it); a refused refresh asks no source and is audited too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from integrations import refresh as source_refresh
from portal import audit
from portal.events.relay import request_relay_after_commit
from portal.extensions import get_redis
from portal.i18n import format_date, format_number
from portal.labels import label
from portal.money import format_money

KEY_PREFIX = "crm:refresh:"

# what the panel calls a changed column
FIELD_LABELS = {
    "outstanding": _l("Outstanding"), "min_due": _l("Minimum due"),
    "credit_limit": _l("Credit limit"), "due_date": _l("Due date"),
    "days_overdue": _l("Days past due"), "dpd": _l("Days past due"), "bucket": _l("Bucket"),
    "status": _l("Status"), "product": _l("Product"), "currency": _l("Currency"),
    "masked_card_number": _l("Card number"), "w4_case_id": _l("W4 case"),
    "w4_case_status": _l("W4 case status"), "cif": _l("Customer"),
    "account_number": _l("Loan account"), "requested_amount": _l("Requested amount"),
    "approved_amount": _l("Approved amount"), "application_date": _l("Application date"),
    "decision_date": _l("Decision date"), "disbursement_date": _l("Disbursement date"),
    "monthly_income": _l("Monthly income"), "employer": _l("Employer"),
    "channel": _l("Channel"), "raw": _l("Scoring details"), "name": _l("Name"),
    "relationship_type": _l("Relationship"), "national_id": _l("National ID"),
    "date_of_birth": _l("Date of birth"), "gender": _l("Gender"), "contacts": _l("Contacts"),
    "primary_cif": _l("Customer"), "type": _l("Type"), "company_name": _l("Company"),
    "phones": _l("Phone numbers"), "addresses": _l("Addresses"), "emails": _l("E-mail addresses"),
}
# T24's contacts of a customer: reconciled as a whole, the change says only that they changed
CONTACTS = {"phones", "addresses", "emails"}
MONEY = {"outstanding", "min_due", "credit_limit", "requested_amount", "approved_amount",
         "monthly_income", "amount_due", "value"}
DATES = {"due_date", "application_date", "decision_date", "disbursement_date", "date_of_birth"}
COUNTS = {"days_overdue", "dpd"}
CODES = {"status", "bucket", "w4_case_status", "relationship_type", "gender", "type"}
TABLE_LABELS = {"cards": _l("Card"), "loan_applications": _l("Loan application"),
                "reference_customers": _l("Reference person"), "customers": _l("Customer"),
                "loans": _l("Loan"), "collaterals": _l("Collateral")}
SOURCE_MESSAGES = {
    source_refresh.PAUSED: _l("%(source)s is paused by operations: nothing was fetched from "
                              "it."),
    source_refresh.DOWN: _l("%(source)s cannot be reached right now (down or not answering): "
                            "nothing from it was applied. Try again later."),
    source_refresh.UNKNOWN: _l("%(source)s does not know this customer: nothing from it was "
                               "applied."),
    source_refresh.REFUSED: _l("%(source)s refused the request: nothing from it was applied. "
                               "Operations can see why on the run page."),
    source_refresh.FAILED: _l("The data from %(source)s could not be applied: nothing from it "
                              "was written. Operations can see why on the run page."),
    source_refresh.NOT_CONFIGURED: _l("%(source)s is not connected in this installation."),
}


class RateLimited(Exception):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class ChangeLine:
    what: str  # "Card 4221…1234"
    field: str
    old: str
    new: str


def _customer_key(cif: str) -> str:
    return f"{KEY_PREFIX}customer:{cif}"


def check_limits(app: Flask, cif: str, user_id: int | None, now: datetime, redis=None) -> None:
    """Raise :class:`RateLimited` when the customer was refreshed too recently or the user
    refreshed too often this minute; else count this refresh for the user."""
    redis = redis or get_redis()
    minutes = int(app.config["REFRESH_CUSTOMER_MINUTES"])
    last = redis.get(_customer_key(cif))
    if last:
        since = now - datetime.fromisoformat(last.decode() if isinstance(last, bytes) else last)
        wait = timedelta(minutes=minutes) - since
        if timedelta(0) <= since and wait > timedelta(0):
            seconds = int(wait.total_seconds()) + 1
            raise RateLimited(_("This customer was refreshed less than %(minutes)d minutes ago. "
                                "Try again in %(seconds)d seconds.", minutes=minutes,
                                seconds=seconds), seconds)
    if user_id is not None:
        key = f"{KEY_PREFIX}user:{user_id}:{now:%Y%m%d%H%M}"
        count = redis.incr(key)
        redis.expire(key, 120)
        per_minute = int(app.config["REFRESH_USER_PER_MINUTE"])
        if count > per_minute:
            seconds = 60 - now.second
            raise RateLimited(_("You may refresh at most %(num)d customers a minute. Try again "
                                "in %(seconds)d seconds.", num=per_minute, seconds=seconds),
                              seconds)


def _remember(app: Flask, cif: str, now: datetime, redis=None) -> None:
    redis = redis or get_redis()
    minutes = int(app.config["REFRESH_CUSTOMER_MINUTES"])
    # the TTL only cleans up: the comparison is on the product clock
    redis.set(_customer_key(cif), now.isoformat(), ex=max(60, minutes * 60 * 2))


def refresh(app: Flask, session: Session, cif: str, *, user, now: datetime,
            correlation_id: str | None = None) -> source_refresh.RefreshOutcome:
    """Refresh ``cif`` for ``user`` (raises :class:`RateLimited`, audited); the audit row is
    added to ``session`` (the caller commits)."""
    user_id = getattr(user, "id", None)
    try:
        check_limits(app, cif, user_id, now)
    except RateLimited as exc:
        audit.record(session, user, "customer.refresh", "customer", cif,
                     after={"outcome": "rate_limited", "retry_after": exc.retry_after})
        raise
    outcome = source_refresh.refresh_customer(app, cif, user_id=user_id,
                                              correlation_id=correlation_id)
    if any(s.status in (source_refresh.APPLIED, source_refresh.UNKNOWN)
           for s in outcome.sources):
        _remember(app, cif, now)
    audit.record(session, user, "customer.refresh", "customer", cif, after={
        "outcome": outcome.status,
        "sources": [{"integration": s.integration, "status": s.status, "run_id": s.run_id,
                     "changes": len(s.changes)} for s in outcome.sources]})
    if outcome.applied:
        request_relay_after_commit()
    return outcome


# -- the panel ---------------------------------------------------------------------------------

def format_value(column: str, value, currency: str | None = None) -> str:
    if value is None or value == "":
        return "—"
    if column in MONEY:
        return format_money(value, currency or "VND")
    if column in DATES:
        try:
            return format_date(date.fromisoformat(str(value)[:10]))
        except ValueError:
            return str(value)
    if column in COUNTS:
        try:
            return format_number(Decimal(str(value)))
        except InvalidOperation:
            return str(value)
    if column in CODES:
        return label(value)
    if isinstance(value, dict | list):
        return _("(details)")
    return str(value)


def field_label(column: str) -> str:
    found = FIELD_LABELS.get(column.removeprefix("reference."))
    return str(found) if found is not None else label(column)


def change_lines(result: source_refresh.SourceResult) -> list[ChangeLine]:
    """The source's changes, one line per field (a created row: its headline fields)."""
    lines = []
    for change in result.changes:
        if change.field in ("source_system", "last_synced_at", "raw") or (
                change.created and change.field not in
                ("outstanding", "status", "days_overdue", "requested_amount", "name")):
            continue
        what = f"{TABLE_LABELS.get(change.table, change.table)} {change.key}"
        if change.created:
            what = _("%(what)s (new)", what=what)
        if change.field in CONTACTS:
            lines.append(ChangeLine(what, field_label(change.field), "—", _("updated")))
            continue
        lines.append(ChangeLine(what, field_label(change.field),
                                format_value(change.field, change.old),
                                format_value(change.field, change.new)))
    return lines


def source_message(result: source_refresh.SourceResult) -> str | None:
    found = SOURCE_MESSAGES.get(result.status)
    return str(found) % {"source": result.integration} if found is not None else None
