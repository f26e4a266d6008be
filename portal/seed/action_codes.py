"""The default catalogue of action codes: type → subtype → result, with their flags.

``is_contact`` means right-party contact (the customer, or for an organisation its authorised
person, was reached); ``is_promise`` means the result captures a promise to pay.
``follow_up_days`` is the offset of the next follow-up from the action's business date
(``None``: no automatic follow-up). Admins can change the catalogue later; this is the start.
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

DEFAULT_ACTION_CODES: tuple[ActionCodeSpec, ...] = (
    # Outbound calls to the customer's own numbers
    _C("CALL", "OUTBOUND", "PTP", "Promise to pay", True, True, 1),
    _C("CALL", "OUTBOUND", "RPC_REFUSED", "Customer reached, refused to pay", True, False, 3),
    _C("CALL", "OUTBOUND", "RPC_HARDSHIP", "Customer reached, financial hardship", True, False, 5),
    _C("CALL", "OUTBOUND", "RPC_DISPUTE", "Customer reached, disputes the debt", True, False, 7),
    _C("CALL", "OUTBOUND", "RPC_CLAIMS_PAID", "Customer says already paid", True, False, 1),
    _C("CALL", "OUTBOUND", "CALLBACK", "Customer asked to be called back", True, False, 1),
    _C("CALL", "OUTBOUND", "THIRD_PARTY", "Third party answered, message left", False, False, 1),
    _C("CALL", "OUTBOUND", "NO_ANSWER", "No answer", False, False, 1),
    _C("CALL", "OUTBOUND", "BUSY", "Line busy", False, False, 0),
    _C("CALL", "OUTBOUND", "VOICEMAIL", "Voicemail", False, False, 1),
    _C("CALL", "OUTBOUND", "SWITCHED_OFF", "Phone switched off / unreachable", False, False, 1),
    _C("CALL", "OUTBOUND", "WRONG_NUMBER", "Wrong number", False, False, 1),
    # Inbound calls from the customer
    _C("CALL", "INBOUND", "PTP", "Customer called, promise to pay", True, True, 1),
    _C("CALL", "INBOUND", "RPC_QUERY", "Customer called with a question", True, False, 3),
    _C("CALL", "INBOUND", "RPC_CLAIMS_PAID", "Customer called, says already paid", True, False, 1),
    # Calls to reference persons (spouse, guarantor, ...)
    _C("CALL", "REFERENCE", "MESSAGE_LEFT", "Reference reached, message left", False, False, 2),
    _C("CALL", "REFERENCE", "NEW_CONTACT", "Reference gave a new contact", False, False, 1),
    _C("CALL", "REFERENCE", "REFUSED", "Reference refused to help", False, False, 3),
    _C("CALL", "REFERENCE", "NO_ANSWER", "Reference did not answer", False, False, 2),
    # Field visits
    _C("VISIT", "HOME", "PTP", "Visit at home, promise to pay", True, True, 1),
    _C("VISIT", "HOME", "RPC_REFUSED", "Visit at home, refused to pay", True, False, 5),
    _C("VISIT", "HOME", "NOT_HOME", "Visit at home, customer not at home", False, False, 2),
    _C("VISIT", "HOME", "THIRD_PARTY", "Visit at home, family member met", False, False, 3),
    _C("VISIT", "HOME", "MOVED", "Customer moved away", False, False, 1),
    _C("VISIT", "HOME", "ADDRESS_NOT_FOUND", "Address not found", False, False, 1),
    _C("VISIT", "WORK", "PTP", "Visit at work, promise to pay", True, True, 1),
    _C("VISIT", "WORK", "RPC_REFUSED", "Visit at work, refused to pay", True, False, 5),
    _C("VISIT", "WORK", "NOT_PRESENT", "Visit at work, customer not present", False, False, 2),
    _C("VISIT", "WORK", "LEFT_COMPANY", "Customer no longer works there", False, False, 1),
    # Text messages
    _C("SMS", "REMINDER", "SENT", "Payment reminder sent"),
    _C("SMS", "REMINDER", "FAILED", "Payment reminder not delivered", follow_up_days=1),
    _C("SMS", "PTP_CONFIRMATION", "SENT", "Promise confirmation sent"),
    _C("SMS", "OVERDUE_NOTICE", "SENT", "Overdue notice sent", follow_up_days=2),
    # E-mails
    _C("EMAIL", "REMINDER", "SENT", "Reminder e-mail sent", follow_up_days=3),
    _C("EMAIL", "REMINDER", "BOUNCED", "Reminder e-mail bounced", follow_up_days=1),
    _C("EMAIL", "DEMAND", "SENT", "Demand e-mail sent", follow_up_days=5),
    # Letters
    _C("LETTER", "DEMAND", "SENT", "Demand letter sent", follow_up_days=7),
    _C("LETTER", "DEMAND", "RETURNED", "Demand letter returned undelivered", follow_up_days=1),
    _C("LETTER", "LEGAL_NOTICE", "SENT", "Legal notice sent", follow_up_days=10),
)
