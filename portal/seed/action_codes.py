"""The default catalogue of action codes: type → subtype → result, with their flags.

``is_contact`` means right-party contact (the customer, or for an organisation its authorised
person, was reached); ``is_promise`` means the result captures a promise to pay.
``follow_up_days`` is the offset of the next follow-up from the action's business date
(``None``: no automatic follow-up). Admins can change the catalogue later; this is the start.
The labels are stored in English, the catalogue's language, and shown translated.
"""

from __future__ import annotations

from typing import NamedTuple


class ActionCodeSpec(NamedTuple):
    type: str
    subtype: str
    result: str
    label: str
    is_contact: bool = False
    is_promise: bool = False
    follow_up_days: int | None = None


_C = ActionCodeSpec


def N_(label: str) -> str:  # noqa: N802 - the keyword pybabel extracts
    """A default label, marked for the catalogue: pages show it in the reader's language
    (the ``action_label`` filter, portal/cases/views.py); a label an admin writes is shown as
    written."""
    return label


DEFAULT_ACTION_CODES: tuple[ActionCodeSpec, ...] = (
    # Outbound calls to the customer's own numbers
    _C("CALL", "OUTBOUND", "PTP", N_("Promise to pay"), True, True, 1),
    _C("CALL", "OUTBOUND", "RPC_REFUSED", N_("Customer reached, refused to pay"), True, False, 3),
    _C("CALL", "OUTBOUND", "RPC_HARDSHIP", N_("Customer reached, financial hardship"),
       True, False, 5),
    _C("CALL", "OUTBOUND", "RPC_DISPUTE", N_("Customer reached, disputes the debt"),
       True, False, 7),
    _C("CALL", "OUTBOUND", "RPC_CLAIMS_PAID", N_("Customer says already paid"), True, False, 1),
    _C("CALL", "OUTBOUND", "CALLBACK", N_("Customer asked to be called back"), True, False, 1),
    _C("CALL", "OUTBOUND", "THIRD_PARTY", N_("Third party answered, message left"),
       False, False, 1),
    _C("CALL", "OUTBOUND", "NO_ANSWER", N_("No answer"), False, False, 1),
    _C("CALL", "OUTBOUND", "BUSY", N_("Line busy"), False, False, 0),
    _C("CALL", "OUTBOUND", "VOICEMAIL", N_("Voicemail"), False, False, 1),
    _C("CALL", "OUTBOUND", "SWITCHED_OFF", N_("Phone switched off / unreachable"), False, False, 1),
    _C("CALL", "OUTBOUND", "WRONG_NUMBER", N_("Wrong number"), False, False, 1),
    # Inbound calls from the customer
    _C("CALL", "INBOUND", "PTP", N_("Customer called, promise to pay"), True, True, 1),
    _C("CALL", "INBOUND", "RPC_QUERY", N_("Customer called with a question"), True, False, 3),
    _C("CALL", "INBOUND", "RPC_CLAIMS_PAID", N_("Customer called, says already paid"),
       True, False, 1),
    # Calls to reference persons (spouse, guarantor, ...)
    _C("CALL", "REFERENCE", "MESSAGE_LEFT", N_("Reference reached, message left"), False, False, 2),
    _C("CALL", "REFERENCE", "NEW_CONTACT", N_("Reference gave a new contact"), False, False, 1),
    _C("CALL", "REFERENCE", "REFUSED", N_("Reference refused to help"), False, False, 3),
    _C("CALL", "REFERENCE", "NO_ANSWER", N_("Reference did not answer"), False, False, 2),
    # Field visits
    _C("VISIT", "HOME", "PTP", N_("Visit at home, promise to pay"), True, True, 1),
    _C("VISIT", "HOME", "RPC_REFUSED", N_("Visit at home, refused to pay"), True, False, 5),
    _C("VISIT", "HOME", "NOT_HOME", N_("Visit at home, customer not at home"), False, False, 2),
    _C("VISIT", "HOME", "THIRD_PARTY", N_("Visit at home, family member met"), False, False, 3),
    _C("VISIT", "HOME", "MOVED", N_("Customer moved away"), False, False, 1),
    _C("VISIT", "HOME", "ADDRESS_NOT_FOUND", N_("Address not found"), False, False, 1),
    _C("VISIT", "WORK", "PTP", N_("Visit at work, promise to pay"), True, True, 1),
    _C("VISIT", "WORK", "RPC_REFUSED", N_("Visit at work, refused to pay"), True, False, 5),
    _C("VISIT", "WORK", "NOT_PRESENT", N_("Visit at work, customer not present"), False, False, 2),
    _C("VISIT", "WORK", "LEFT_COMPANY", N_("Customer no longer works there"), False, False, 1),
    # Text messages
    _C("SMS", "REMINDER", "SENT", N_("Payment reminder sent")),
    _C("SMS", "REMINDER", "FAILED", N_("Payment reminder not delivered"), follow_up_days=1),
    _C("SMS", "PTP_CONFIRMATION", "SENT", N_("Promise confirmation sent")),
    _C("SMS", "OVERDUE_NOTICE", "SENT", N_("Overdue notice sent"), follow_up_days=2),
    # E-mails
    _C("EMAIL", "REMINDER", "SENT", N_("Reminder e-mail sent"), follow_up_days=3),
    _C("EMAIL", "REMINDER", "BOUNCED", N_("Reminder e-mail bounced"), follow_up_days=1),
    _C("EMAIL", "DEMAND", "SENT", N_("Demand e-mail sent"), follow_up_days=5),
    # Letters
    _C("LETTER", "DEMAND", "SENT", N_("Demand letter sent"), follow_up_days=7),
    _C("LETTER", "DEMAND", "RETURNED", N_("Demand letter returned undelivered"), follow_up_days=1),
    _C("LETTER", "LEGAL_NOTICE", "SENT", N_("Legal notice sent"), follow_up_days=10),
)
