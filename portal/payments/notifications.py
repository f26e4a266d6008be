"""Receiving a payment notification: check it, store it exactly once with its event, or refuse it
and keep the refused request for ops.

One function takes a notification from either door — the signed webhook (``receive_webhook``)
or the daily reconciliation (``accept`` with ``source="reconciliation"``) — so both apply the
same rules:

- **Exactly once.** ``payments.event_id`` and ``payments.reference_number`` are unique; the row
  is inserted with ``ON CONFLICT DO NOTHING``, so of two concurrent copies one inserts and the
  other (blocked on the unique index until the first commits) inserts nothing and answers
  "duplicate" with the existing payment id. A copy arriving later is found by the first lookup.
- **Outbox.** The PAYMENT_* event is added in the same transaction as the row (the caller
  commits both); Redis is not touched before the commit, so a Redis outage never refuses a
  payment — the relay publishes the event when Redis is back.
- **Resends.** A webhook message (named by its ``webhook-id`` in the Standard Webhooks scheme,
  by its ``event_id`` in crm-hmac) leaves a receipt with the payment, written by the same
  statement (portal/webhook_receipts.py). The same message again — the very same signed request
  or a re-signed retry — is answered 200 with the JSON the first delivery got; the same id with
  another body is a conflict (409 ``message_conflict``). Another message carrying a payment
  already stored (same ``event_id`` or reference) answers 200 "duplicate".

Wire format: docs/integrations.md, "Payment system".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, false, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session

from portal import clock, signing, webhook_receipts
from portal.events import publish
from portal.events.publish import to_json
from portal.messages import vietqr
from portal.models import Event, Loan, Payment
from portal.models.payments import RejectedNotification
from portal.models.webhooks import WebhookReceipt
from portal.text import first_unstorable, printable
from portal.webhook_receipts import Message, MessageConflict

TYPES = ("payment.received", "payment.failed", "payment.reversed")
STATUS_OF_TYPE = {"payment.received": "received", "payment.failed": "failed",
                  "payment.reversed": "reversed"}
EVENT_OF_TYPE = {"payment.received": "PAYMENT_RECEIVED", "payment.failed": "PAYMENT_FAILED",
                 "payment.reversed": "PAYMENT_REVERSED"}
SINGLE_STATEMENT_TYPES = ("payment.received", "payment.failed")  # see ``accept``
MAX_AMOUNT = Decimal("9999999999999999.99")  # Numeric(18, 2)
KEY_MAX = 64
FUTURE_TOLERANCE = timedelta(minutes=10)
OLDEST_PAID_AT = timedelta(days=400)
LOGGED_BODY_MAX = 65536
DEFAULT_MAX_BYTES = 65536
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Timestamp", "X-Signature",
                "webhook-id", "webhook-timestamp", "webhook-signature",
                "X-Request-Id", "X-Correlation-Id", "X-Forwarded-For")


class Refused(Exception):
    """A notification the portal will not take: HTTP status, stable code, message, field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


@dataclass(frozen=True)
class Notice:
    """A notification whose shape has been checked (not yet against the database)."""

    event_id: str | None
    type: str
    reference_number: str
    account_number: str
    cif: str | None  # None until with_loan_cif when only a payment reference named the loan
    amount: Decimal
    currency: str
    paid_at: datetime
    channel: str | None = None
    original_reference: str | None = None
    reason: str | None = None
    raw: dict | None = None

    @property
    def status(self) -> str:
        return STATUS_OF_TYPE[self.type]


@dataclass(frozen=True)
class Outcome:
    payment_id: int
    status: str
    duplicate: bool

    @property
    def http_status(self) -> int:
        return 200 if self.duplicate else 201

    def to_json(self) -> dict:
        return {"payment_id": self.payment_id, "status": self.status,
                "duplicate": self.duplicate}


# -- shape --------------------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def parse_body(body: bytes) -> dict:
    """The JSON object of a request body (numbers with a fraction as Decimal, never float)."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, "malformed_json", f"the body is not valid JSON: {exc}"[:300],
                      "body") from exc
    except RecursionError:
        raise Refused(400, "malformed_json", "the body is nested too deeply", "body") from None
    if not isinstance(data, dict):
        raise Refused(400, "malformed_json", "the body must be a JSON object", "body")
    if b"\\u" in body:  # only \u escapes can make a NUL or a lone surrogate
        field = first_unstorable(data)
        if field is not None:
            raise Refused(422, "invalid_text", f"{field} holds a NUL or an invalid character",
                          field)
    return data


def _key(data: Mapping, name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise Refused(422, "missing_field", f"{name} is required", name)
        return None
    if not isinstance(value, str) or len(value) > KEY_MAX or not value.strip():
        raise Refused(422, "invalid_field",
                      f"{name} must be a string of at most {KEY_MAX} characters", name)
    return value.strip()


def parse_amount(value) -> Decimal:
    """A positive amount with at most 2 decimals, given as a JSON string or number."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise Refused(422, "invalid_amount", "amount must be a decimal string such as "
                      "\"1500000.00\"", "amount")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise Refused(422, "invalid_amount", f"amount {str(value)[:40]!r} is not a number",
                      "amount") from None
    if not amount.is_finite() or amount.as_tuple().exponent < -2:
        raise Refused(422, "invalid_amount", "amount must have at most 2 decimals", "amount")
    if amount <= 0:
        raise Refused(422, "invalid_amount", "amount must be greater than zero", "amount")
    if amount > MAX_AMOUNT:
        raise Refused(422, "invalid_amount", "amount is too large", "amount")
    return amount


def parse_paid_at(value, now: datetime) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise Refused(422, "invalid_paid_at", "paid_at must be an ISO 8601 time with its "
                      "offset, e.g. 2026-11-24T09:30:00+07:00", "paid_at")
    try:
        paid_at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Refused(422, "invalid_paid_at", f"paid_at {value[:40]!r} is not an ISO 8601 time",
                      "paid_at") from None
    if paid_at.tzinfo is None:
        raise Refused(422, "invalid_paid_at", "paid_at must carry its UTC offset", "paid_at")
    paid_at = paid_at.astimezone(UTC)
    if paid_at > now + FUTURE_TOLERANCE:
        raise Refused(422, "invalid_paid_at", "paid_at is in the future", "paid_at")
    if paid_at < now - OLDEST_PAID_AT:
        raise Refused(422, "invalid_paid_at", "paid_at is more than 400 days ago", "paid_at")
    return paid_at


DESCRIPTION_MAX = 500


def _loan_account(data: Mapping) -> str:
    """The loan a notification is for: ``loan_account_number``, or the loan named by the
    VietQR payment reference (portal.messages.vietqr) in ``payment_reference`` or in the
    transfer text ``description``. A reference whose check digits fail names no loan (a typo
    is refused, never matched to another loan); a reference naming another loan than
    ``loan_account_number`` is refused too."""
    account = _key(data, "loan_account_number", required=False)
    reference = _key(data, "payment_reference", required=False)
    description = data.get("description")
    if description is not None and (not isinstance(description, str)
                                    or len(description) > DESCRIPTION_MAX):
        raise Refused(422, "invalid_field", "description must be a string of at most "
                      f"{DESCRIPTION_MAX} characters", "description")
    named, field = [], None
    if reference is not None:
        found = vietqr.account_from_reference(reference)
        if found is None:
            raise Refused(422, "invalid_payment_reference",
                          f"{reference} is not a payment reference (its check digits fail)",
                          "payment_reference")
        named, field = [found], "payment_reference"
    elif description:
        named, field = vietqr.references_in(description), "description"
        if len(named) > 1:
            raise Refused(422, "ambiguous_loan_reference",
                          f"the description names loans {', '.join(named)}", "description")
    if account is not None and named and named[0] != account:
        raise Refused(422, "reference_mismatch",
                      f"the payment reference names loan {named[0]}, not {account}", field)
    if account is None and not named:
        raise Refused(422, "missing_field", "loan_account_number (or a payment reference) "
                      "is required", "loan_account_number")
    return account or named[0]


def with_loan_cif(session: Session, notice: Notice) -> Notice:
    """``notice`` with its loan's customer when it came without one (found by its payment
    reference); Refused when there is no such loan."""
    if notice.cif is not None:
        return notice
    cif = session.scalar(select(Loan.cif).where(Loan.account_number == notice.account_number))
    if cif is None:
        raise Refused(422, "unknown_loan", f"there is no loan {notice.account_number}",
                      "loan_account_number")
    return replace(notice, cif=cif, raw={**(notice.raw or {}), "cif": cif})


def parse_notice(data: Mapping, now: datetime | None = None, *,
                 require_event_id: bool = True) -> Notice:
    """Check the shape of a notification (fields, types, formats); raises ``Refused``."""
    now = now or clock.now()
    event_id = _key(data, "event_id", required=require_event_id)
    kind = data.get("type")
    if kind not in TYPES:
        raise Refused(422, "invalid_type", f"type must be one of {', '.join(TYPES)}", "type")
    reference = _key(data, "reference_number")
    original = _key(data, "original_reference", required=kind == "payment.reversed")
    account = _loan_account(data)
    # a payment found by its VietQR reference alone names no customer: the loan's is taken
    # (portal.payments.notifications.with_loan_cif)
    cif = _key(data, "cif", required=data.get("loan_account_number") not in (None, ""))
    if "amount" not in data:
        raise Refused(422, "missing_field", "amount is required", "amount")
    amount = parse_amount(data["amount"])
    currency = data.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha() \
            or not currency.isupper():
        raise Refused(422, "invalid_currency", "currency must be an ISO 4217 code such as VND",
                      "currency")
    paid_at = parse_paid_at(data.get("paid_at"), now)
    channel = data.get("channel")
    if channel is not None and (not isinstance(channel, str) or len(channel) > 32):
        raise Refused(422, "invalid_field", "channel must be a string of at most 32 characters",
                      "channel")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise Refused(422, "invalid_field", "metadata must be a JSON object", "metadata")
    reason = data.get("reason") or (metadata or {}).get("reason")
    if reason is not None:
        reason = str(reason)[:200]
    if original is not None and kind != "payment.reversed":
        original = None
    return Notice(event_id=event_id, type=kind, reference_number=reference,
                  account_number=account, cif=cif, amount=amount, currency=currency,
                  paid_at=paid_at, channel=channel or None, original_reference=original,
                  reason=reason, raw=to_json(dict(data)))


# -- storing ------------------------------------------------------------------------------------


def _existing(session: Session, notice: Notice):
    keys = [Payment.reference_number == notice.reference_number]
    if notice.event_id:
        keys.append(Payment.event_id == notice.event_id)
    return session.execute(
        select(Payment.id, Payment.status, Payment.signature).where(or_(*keys)).limit(1)
    ).first()


def _duplicate(row) -> Outcome:
    return Outcome(row.id, row.status, duplicate=True)


def accept(session: Session, notice: Notice, *, source: str = "webhook",
           raw_body: str | None = None, signature: str | None = None,
           message: Message | None = None) -> Outcome:
    """Store ``notice`` as a payment with its PAYMENT_* event, or find it already stored.
    Raises ``Refused`` for a notification that does not fit the portal's data. No commit.
    ``message``: the webhook message it came in, whose receipt is written with the payment
    (IntegrityError when that message id already has one: see ``receive_webhook``).

    A payment or failed attempt takes one statement on the way in: the row is inserted from the
    loan's row (``INSERT … SELECT … FROM loans WHERE`` the loan, customer and currency match
    ``ON CONFLICT DO NOTHING``); only when nothing was inserted does a second look say why —
    a duplicate, or which field is wrong."""
    if notice.type == "payment.reversed":
        return _accept_reversal(session, notice, source, raw_body, signature, message)
    # the event is built and checked by portal.events.publish, then written by the same
    # statement as the payment (one round trip), with the payment's id put into its payload;
    # the message's receipt too
    event = _publish(session, notice, None, source, None)
    session.expunge(event)
    receipt = {f"rc_{k}": v for k, v in message.row(201, {}).items() if k != "response"} \
        if message is not None else {}
    payment_id = session.execute(
        _insert_from_loan(message is not None),
        {**_row(notice, source, raw_body, signature),
         **{f"ev_{k}": v for k, v in _event_row(event).items()}, **receipt}
    ).scalar()
    if payment_id is None:
        found = _existing(session, notice)
        if found is not None:  # stored before, or by a concurrent copy that committed first
            return _duplicate(found)
        _check_loan(session, notice)
        raise Refused(409, "conflict", "the payment conflicts with another one")  # pragma: no cover
    return Outcome(payment_id, notice.status, duplicate=False)


INSERT_COLUMNS = ("reference_number", "event_id", "original_reference", "account_number", "cif",
                  "amount", "currency", "paid_at", "channel", "status", "source", "raw_payload",
                  "raw_body", "signature", "failure_reason")


def _row(notice: Notice, source: str, raw_body: str | None, signature: str | None) -> dict:
    return {
        "reference_number": notice.reference_number, "event_id": notice.event_id,
        "original_reference": notice.original_reference,
        "account_number": notice.account_number, "cif": notice.cif, "amount": notice.amount,
        "currency": notice.currency, "paid_at": notice.paid_at, "channel": notice.channel,
        "status": notice.status, "source": source, "raw_payload": notice.raw,
        "raw_body": raw_body, "signature": signature,
        "failure_reason": notice.reason if notice.type == "payment.failed" else None,
    }


EVENT_COLUMNS = ("id", "type", "version", "aggregate_type", "aggregate_id", "payload",
                 "correlation_id", "traceparent", "occurred_at")


def _event_row(event: Event) -> dict:
    return {name: getattr(event, name) for name in EVENT_COLUMNS}


@cache
def _insert_from_loan(with_receipt: bool):
    """One statement: ``WITH payment AS (INSERT INTO payments (…) SELECT :values FROM loans
    WHERE account_number, cif and currency match ON CONFLICT DO NOTHING RETURNING id) INSERT
    INTO events … SELECT … FROM payment RETURNING the payment's id`` — no row when nothing was
    inserted (a duplicate, or a loan that does not match). ``with_receipt``: a third part
    inserts the webhook message's receipt (its answer, with the new payment's id) from
    ``payment``; a receipt already there for the message id fails the whole statement.
    Built once per shape, executed with a row."""
    payments, events = Payment.__table__, Event.__table__  # Core: a dict is one row
    values = [bindparam(name, type_=payments.c[name].type).label(name)
              for name in INSERT_COLUMNS]
    payment = (
        insert(payments).from_select(
            list(INSERT_COLUMNS),
            select(*values).where(
                Loan.account_number == bindparam("account_number"),
                Loan.cif == bindparam("cif"), Loan.currency == bindparam("currency")),
        ).on_conflict_do_nothing().returning(payments.c.id).cte("payment")
    )
    event_values = [
        bindparam(f"ev_{name}", type_=events.c[name].type).label(name)
        if name != "payload" else
        func.jsonb_set(bindparam("ev_payload", type_=JSONB), literal_column("'{payment_id}'"),
                       func.to_jsonb(payment.c.id)).label(name)
        for name in EVENT_COLUMNS
    ]
    statement = (
        insert(events).from_select(list(EVENT_COLUMNS),
                                   select(*event_values).select_from(payment))
        .returning(events.c.payload["payment_id"].as_integer())
    )
    if with_receipt:
        receipts = WebhookReceipt.__table__
        # Outcome.to_json() of a new payment, built in SQL where its id is known (the tests
        # compare the stored answer with the one sent)
        response = func.jsonb_build_object(
            literal_column("'payment_id'"), payment.c.id,
            literal_column("'status'"), bindparam("status", type_=payments.c.status.type),
            literal_column("'duplicate'"), false())
        values = [bindparam(f"rc_{c.name}", type_=c.type).label(c.name)
                  if c.name != "response" else response.label(c.name) for c in receipts.c]
        statement = statement.add_cte(
            insert(receipts).from_select([c.name for c in receipts.c],
                                         select(*values).select_from(payment))
            .cte("receipt"))
    return statement


def _check_loan(session: Session, notice: Notice) -> None:
    """Refuse (naming the field) a notification whose loan, customer or currency is wrong."""
    loan = session.execute(
        select(Loan.cif, Loan.currency).where(Loan.account_number == notice.account_number)
    ).first()
    if loan is None:
        raise Refused(422, "unknown_loan", f"there is no loan {notice.account_number}",
                      "loan_account_number")
    if loan.cif != notice.cif:
        raise Refused(422, "cif_mismatch",
                      f"loan {notice.account_number} does not belong to customer {notice.cif}",
                      "cif")
    if loan.currency != notice.currency:
        raise Refused(422, "currency_mismatch",
                      f"loan {notice.account_number} is in {loan.currency}, "
                      f"not {notice.currency}", "currency")


def _accept_reversal(session: Session, notice: Notice, source: str, raw_body: str | None,
                     signature: str | None, message: Message | None) -> Outcome:
    found = _existing(session, notice)
    if found is not None:
        return _duplicate(found)
    _check_loan(session, notice)
    original = session.scalar(
        select(Payment).where(Payment.reference_number == notice.original_reference)
        .with_for_update()
    )
    if original is None:
        raise Refused(422, "unknown_payment",
                      f"there is no payment {notice.original_reference} to reverse",
                      "original_reference")
    if original.status == "reversed":
        found = _existing(session, notice)  # a concurrent copy of this reversal won
        if found is not None:
            return _duplicate(found)
        raise Refused(409, "already_reversed",
                      f"payment {notice.original_reference} is already reversed",
                      "original_reference")
    if original.original_reference is not None or original.status != "received":
        raise Refused(422, "not_reversible",
                      f"{notice.original_reference} is not a received payment",
                      "original_reference")
    if original.account_number != notice.account_number:
        raise Refused(422, "reversal_mismatch",
                      f"payment {notice.original_reference} was made to loan "
                      f"{original.account_number}", "loan_account_number")
    if original.amount != notice.amount:
        raise Refused(422, "reversal_mismatch",
                      f"payment {notice.original_reference} was "
                      f"{original.amount} {original.currency}", "amount")
    payment_id = session.execute(
        insert(Payment).values(**_row(notice, source, raw_body, signature))
        .on_conflict_do_nothing().returning(Payment.id)
    ).scalar()
    if payment_id is None:  # a concurrent copy inserted first (and has committed)
        found = _existing(session, notice)
        if found is None:  # pragma: no cover - a conflict always leaves a row behind
            raise Refused(409, "conflict", "the payment conflicts with another one")
        return _duplicate(found)
    _publish(session, notice, payment_id, source, original)
    outcome = Outcome(payment_id, notice.status, duplicate=False)
    if message is not None:
        webhook_receipts.record(session, message, 201, outcome.to_json())
    return outcome


def _publish(session: Session, notice: Notice, payment_id: int | None, source: str,
             original: Payment | None) -> Event:
    """Publish the notification's event (portal.events: validated, in the outbox).
    ``payment_id`` None: the payment is inserted with the event (see ``accept``)."""
    common = {"account_number": notice.account_number, "cif": notice.cif,
              "amount": notice.amount, "currency": notice.currency}
    if notice.type == "payment.received":
        return publish("PAYMENT_RECEIVED", {
            **common, "reference_number": notice.reference_number, "paid_at": notice.paid_at,
            "payment_id": payment_id, "channel": notice.channel, "source": source,
        }, session=session)
    if notice.type == "payment.failed":
        return publish("PAYMENT_FAILED", {
            **common, "reference_number": notice.reference_number, "payment_id": payment_id,
            "reason": notice.reason or "not given", "source": source,
        }, session=session)
    original.status, original.reversed_at = "reversed", notice.paid_at
    return publish("PAYMENT_REVERSED", {
        **common, "reference_number": original.reference_number,
        "payment_id": original.id, "reason": notice.reason,
        "reversed_at": notice.paid_at, "reversal_reference": notice.reference_number,
        "reversal_id": payment_id, "source": source,
    }, session=session)


# -- the webhook --------------------------------------------------------------------------------


class WebhookSettings(NamedTuple):
    secrets: list[str]
    window_seconds: int
    max_bytes: int
    schemes: tuple[str, ...]


def webhook_settings() -> WebhookSettings:
    """Secrets, replay window, body limit and signing schemes from the app config."""
    config = current_app.config
    return WebhookSettings(
        signing.parse_secrets(config.get("PAYMENT_WEBHOOK_SECRETS")),
        int(config.get("PAYMENT_WEBHOOK_WINDOW_SECONDS") or signing.DEFAULT_WINDOW_SECONDS),
        int(config.get("PAYMENT_WEBHOOK_MAX_BYTES") or DEFAULT_MAX_BYTES),
        signing.parse_schemes(config.get("PAYMENT_WEBHOOK_SCHEME")))


@dataclass(frozen=True)
class Answer:
    """What the webhook answers: HTTP status, JSON body, and whether it is a stored answer
    given again (a resend: the ``Idempotent-Replayed`` header)."""

    status: int
    body: dict
    replayed: bool = False


def receive_webhook(session: Session, *, body: bytes, headers: Mapping[str, str],
                    body_size: int | None = None, remote_addr: str | None = None) -> Answer:
    """Handle one webhook request end to end (commits).

    ``body`` is at most the limit plus one byte (the caller stops reading there);
    ``body_size`` is the announced or read size when the caller knows it to be larger."""
    settings = webhook_settings()
    size = max(len(body), body_size or 0)
    try:
        if size > settings.max_bytes:
            raise Refused(413, "body_too_large",
                          f"the body is {size} bytes; the limit is {settings.max_bytes}", "body")
        try:
            verified = signing.verify_message(headers, body, settings.secrets,
                                              schemes=settings.schemes,
                                              window_seconds=settings.window_seconds)
        except signing.SignatureError as exc:
            status = 500 if exc.code == "no_secret_configured" else 401
            raise Refused(status, exc.code, exc.message, exc.field) from None
        data = parse_body(body)
        # a Standard Webhooks message without an event_id: its webhook-id names the event
        notice = parse_notice(data, require_event_id=verified.message_id is None)
        if notice.event_id is None:
            notice = replace(notice, event_id=_key({"event_id": verified.message_id},
                                                   "event_id"))
        notice = with_loan_cif(session, notice)
        message = webhook_receipts.message("PAYMENTS", verified, body, notice.event_id)
        return _apply(session, notice, message, body, verified.signature)
    except (Refused, MessageConflict) as refusal:
        session.rollback()
        if isinstance(refusal, MessageConflict):
            refusal = Refused(refusal.status, refusal.code, refusal.message, refusal.field)
        record_rejection(session, refusal, body=body, body_size=size, headers=headers,
                         remote_addr=remote_addr)
        session.commit()
        return Answer(refusal.status, refusal.to_json())


def _apply(session: Session, notice: Notice, message: Message, body: bytes,
           signature: str) -> Answer:
    """Store the notice with its message's receipt (commits), or answer a resend of the
    message from its receipt; raises Refused or MessageConflict."""
    if notice.type in SINGLE_STATEMENT_TYPES and _idle(session):
        # one statement stores the payment with its event (atomic by itself): run it in
        # autocommit, which spares the BEGIN and COMMIT round trips of a transaction
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        outcome = accept(session, notice, source="webhook", raw_body=_text(body),
                         signature=signature, message=message)
    except IntegrityError as exc:  # the message id has a receipt, for another payment
        if not webhook_receipts.is_receipt_conflict(exc):
            raise
        session.rollback()
        outcome = None
    if outcome is not None and not outcome.duplicate:
        session.commit()
        return Answer(outcome.http_status, outcome.to_json())
    stored = webhook_receipts.stored(session, message)
    session.rollback()
    if stored is not None:  # this very message again: its first answer
        return Answer(200, stored, replayed=True)
    if outcome is None:  # pragma: no cover - a receipt conflict leaves a receipt behind
        raise Refused(409, "conflict", "the message conflicts with another one")
    return Answer(outcome.http_status, outcome.to_json())  # another message, the same payment


def _idle(session: Session) -> bool:
    """Whether ``session`` (or the scoped session's current one) has no transaction begun."""
    current = session() if isinstance(session, scoped_session) else session
    return not current.in_transaction()


def _text(body: bytes) -> str:
    """Bytes as text PostgreSQL can store (no NUL)."""
    return body.decode("utf-8", "replace").replace("\x00", "\ufffd")


def _peek(body: bytes, name: str) -> str | None:
    """``name`` from a body that may not be JSON at all (for the rejection log only)."""
    try:
        value = json.loads(body).get(name)
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(value, str):
        return None
    return printable(value)[:KEY_MAX]


def record_rejection(session: Session, refusal: Refused, *, body: bytes, body_size: int,
                     headers: Mapping[str, str], remote_addr: str | None,
                     integration: str = "PAYMENTS") -> RejectedNotification:
    """Keep a refused request (first 64 KiB of the body, the headers that matter) for ops."""
    small = len(body) <= LOGGED_BODY_MAX
    row = RejectedNotification(
        integration=integration, received_at=clock.now(), status_code=refusal.status,
        code=refusal.code[:40], message=refusal.message, field=refusal.field,
        event_id=_peek(body, "event_id") if small else None,
        reference_number=_peek(body, "reference_number") if small else None,
        headers={k: str(headers.get(k))[:500] for k in KEPT_HEADERS if headers.get(k)},
        body=_text(body[:LOGGED_BODY_MAX]), body_size=body_size,
        remote_addr=(remote_addr or "")[:64] or None,
    )
    session.add(row)
    return row
