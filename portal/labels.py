"""The words for codes: every closed vocabulary of the data model (portal/models/enums.py) and
the bank's product and segment codes, in the reader's language. A page never shows a raw code:
templates write ``{{ value|label }}`` (or ``|label("kind")`` where one code means different
things in two vocabularies), never ``|humanize``.

Labels carry the message context "code": "Home" the address type is not "Home" the page.

A code missing here is shown humanized ("Sme working capital") and logged once, so it is found
and added; the Vietnamese page walk (tests/e2e) fails on the English it leaves.
"""

from __future__ import annotations

import logging

from flask_babel import lazy_pgettext

from portal.permissions.roles import ROLE_LABELS

log = logging.getLogger(__name__)

# Codes that mean the same in every vocabulary they appear in (compared in lower case).
COMMON = {
    # case statuses and processing states
    "open": lazy_pgettext("code", "Open"),
    "in_progress": lazy_pgettext("code", "In progress"),
    "promised": lazy_pgettext("code", "Promised"),
    "closed": lazy_pgettext("code", "Closed"),
    "legal": lazy_pgettext("code", "Legal"),
    "skip_trace": lazy_pgettext("code", "Skip tracing"),
    "new": lazy_pgettext("code", "New"),
    "contacting": lazy_pgettext("code", "Contacting"),
    "negotiating": lazy_pgettext("code", "Negotiating"),
    "monitoring": lazy_pgettext("code", "Monitoring"),
    "escalated": lazy_pgettext("code", "Escalated"),
    "done": lazy_pgettext("code", "Done"),
    # customer, loan and card statuses
    "active": lazy_pgettext("code", "Active"),
    "inactive": lazy_pgettext("code", "Inactive"),
    "deceased": lazy_pgettext("code", "Deceased"),
    "written_off": lazy_pgettext("code", "Written off"),
    "restructured": lazy_pgettext("code", "Restructured"),
    "blocked": lazy_pgettext("code", "Blocked"),
    # contact types
    "mobile": lazy_pgettext("code", "Mobile"),
    "home": lazy_pgettext("code", "Home"),
    "work": lazy_pgettext("code", "Work"),
    "other": lazy_pgettext("code", "Other"),
    "mailing": lazy_pgettext("code", "Mailing"),
    "personal": lazy_pgettext("code", "Personal"),
    # relationships of reference persons
    "spouse": lazy_pgettext("code", "Spouse"),
    "guarantor": lazy_pgettext("code", "Guarantor"),
    "co_signer": lazy_pgettext("code", "Co-signer"),
    "parent": lazy_pgettext("code", "Parent"),
    "child": lazy_pgettext("code", "Child"),
    "sibling": lazy_pgettext("code", "Sibling"),
    "relative": lazy_pgettext("code", "Relative"),
    "colleague": lazy_pgettext("code", "Colleague"),
    "friend": lazy_pgettext("code", "Friend"),
    # actions
    "call": lazy_pgettext("code", "Call"),
    "visit": lazy_pgettext("code", "Visit"),
    "sms": lazy_pgettext("code", "SMS"),
    "email": lazy_pgettext("code", "E-mail"),
    "letter": lazy_pgettext("code", "Letter"),
    "manual": lazy_pgettext("code", "Manual"),
    "cti": lazy_pgettext("code", "Call centre"),
    "system": lazy_pgettext("code", "System"),
    # promises
    "pending": lazy_pgettext("code", "Pending"),
    "kept": lazy_pgettext("code", "Kept"),
    "partially_kept": lazy_pgettext("code", "Partially kept"),
    "broken": lazy_pgettext("code", "Broken"),
    "cancelled": lazy_pgettext("code", "Cancelled"),
    "superseded": lazy_pgettext("code", "Superseded"),
    "part": lazy_pgettext("code", "Partly paid"),  # a plan instalment
    # payments
    "received": lazy_pgettext("code", "Received"),
    "failed": lazy_pgettext("code", "Failed"),
    "reversed": lazy_pgettext("code", "Reversed"),
    "webhook": lazy_pgettext("code", "Payment system"),
    "reconciliation": lazy_pgettext("code", "Reconciliation"),
    # reconciliation gaps
    "missing_in_crm": lazy_pgettext("code", "Missing in the CRM"),
    "missing_in_source": lazy_pgettext("code", "Missing at the source"),
    "amount_mismatch": lazy_pgettext("code", "Amount differs"),
    "status_mismatch": lazy_pgettext("code", "Status differs"),
    "resolved": lazy_pgettext("code", "Resolved"),
    "ignored": lazy_pgettext("code", "Ignored"),
    # calls and agent statuses
    "inbound": lazy_pgettext("code", "Inbound"),
    "outbound": lazy_pgettext("code", "Outbound"),
    "available": lazy_pgettext("code", "Available"),
    "on_call": lazy_pgettext("code", "On a call"),
    "wrap_up": lazy_pgettext("code", "Wrap-up"),
    "break": lazy_pgettext("code", "On a break"),
    "offline": lazy_pgettext("code", "Offline"),
    "portal": lazy_pgettext("code", "Portal"),
    # visits
    "planned": lazy_pgettext("code", "Planned"),
    "checked_in": lazy_pgettext("code", "Checked in"),
    "completed": lazy_pgettext("code", "Completed"),
    "missed": lazy_pgettext("code", "Missed"),
    "verified": lazy_pgettext("code", "Verified"),
    "unverified": lazy_pgettext("code", "Unverified"),
    "manual_pending": lazy_pgettext("code", "Awaiting review"),
    "manual_approved": lazy_pgettext("code", "Approved on review"),
    "rejected": lazy_pgettext("code", "Rejected"),
    "outside_service_area": lazy_pgettext("code", "Outside the service area"),
    "too_fast": lazy_pgettext("code", "Moved too fast"),
    # integration runs and event deliveries
    "sync": lazy_pgettext("code", "Sync"),
    "reconcile": lazy_pgettext("code", "Reconciliation"),
    "forward": lazy_pgettext("code", "Forwarding"),
    "refresh": lazy_pgettext("code", "Customer refresh"),
    "schedule": lazy_pgettext("code", "Scheduled"),
    "retry": lazy_pgettext("code", "Retry"),
    "running": lazy_pgettext("code", "Running"),
    "succeeded": lazy_pgettext("code", "Succeeded"),
    "partial": lazy_pgettext("code", "Partial"),
    "skipped": lazy_pgettext("code", "Skipped"),
    "delivered": lazy_pgettext("code", "Delivered"),
    "dead": lazy_pgettext("code", "Undeliverable"),
    "full": lazy_pgettext("code", "Full"),
    "delta": lazy_pgettext("code", "Delta"),
    # quarantine
    "reprocessed": lazy_pgettext("code", "Reprocessed"),
    "discarded": lazy_pgettext("code", "Discarded"),
    "all": lazy_pgettext("code", "All"),
    # products (T24, W4) and customer segments
    "consumer_loan": lazy_pgettext("code", "Consumer loan"),
    "personal_loan": lazy_pgettext("code", "Personal loan"),
    "auto_loan": lazy_pgettext("code", "Auto loan"),
    "mortgage": lazy_pgettext("code", "Mortgage"),
    "sme_working_capital": lazy_pgettext("code", "SME working capital"),
    "sme_term_loan": lazy_pgettext("code", "SME term loan"),
    "card": lazy_pgettext("code", "Card"),
    "visa_classic": lazy_pgettext("code", "Visa Classic"),
    "visa_gold": lazy_pgettext("code", "Visa Gold"),
    "visa_platinum": lazy_pgettext("code", "Visa Platinum"),
    "mastercard_standard": lazy_pgettext("code", "Mastercard Standard"),
    "jcb_gold": lazy_pgettext("code", "JCB Gold"),
    "mass": lazy_pgettext("code", "Mass"),
    "affluent": lazy_pgettext("code", "Affluent"),
    "priority": lazy_pgettext("code", "Priority"),
    "sme": lazy_pgettext("code", "SME"),
    "micro": lazy_pgettext("code", "Micro business"),
    "individual": lazy_pgettext("code", "Individual"),
    "organization": lazy_pgettext("code", "Organisation"),
    # -- cases (case view, work queue, actions, promises, contacts) --
    "no case": lazy_pgettext("code", "No case"),  # a customer without a collection case
    "in_collection": lazy_pgettext("code", "In collection"),  # a card's W4 case status
    "reference": lazy_pgettext("code", "Reference person"),  # action subtypes
    "reminder": lazy_pgettext("code", "Reminder"),
    "ptp_confirmation": lazy_pgettext("code", "Promise confirmation"),
    "overdue_notice": lazy_pgettext("code", "Overdue notice"),
    "demand": lazy_pgettext("code", "Demand"),
    "legal_notice": lazy_pgettext("code", "Legal notice"),
    "payment": lazy_pgettext("code", "Payment"),
    "promise": lazy_pgettext("code", "Promise"),
    "vehicle": lazy_pgettext("code", "Vehicle"),  # collateral types
    "property": lazy_pgettext("code", "Property"),
    "answered": lazy_pgettext("code", "Answered"),  # call dispositions
    "no_answer": lazy_pgettext("code", "No answer"),
    "busy": lazy_pgettext("code", "Busy"),
    "mobile_banking": lazy_pgettext("code", "Mobile banking"),  # payment channels
    "internet_banking": lazy_pgettext("code", "Internet banking"),
    "branch": lazy_pgettext("code", "Branch"),
    "atm": lazy_pgettext("code", "ATM"),
    "napas_transfer": lazy_pgettext("code", "NAPAS transfer"),
    # -- supervision (agent board, KPIs, assignment, calls) --
    "unknown_number": lazy_pgettext("code", "Unknown number"),  # why a call matched nobody
    "unknown_agent": lazy_pgettext("code", "Unknown agent"),
    # -- office (home, notifications, administration) --
    "deactivated": lazy_pgettext("code", "Deactivated"),
    "revoked": lazy_pgettext("code", "Revoked"),
    "expired": lazy_pgettext("code", "Expired"),
    # -- field work --
    # -- operations and payments --
    "half_open": lazy_pgettext("code", "Half-open"),  # circuit breakers (open, closed: above)
    "critical": lazy_pgettext("code", "Critical"),  # alert severities
    "warning": lazy_pgettext("code", "Warning"),
    "cli": lazy_pgettext("code", "Command line"),  # run and check triggers
    "applied": lazy_pgettext("code", "Applied"),  # product owner moves
    "held": lazy_pgettext("code", "Held"),
    "withdrawn": lazy_pgettext("code", "Withdrawn"),
    "matched": lazy_pgettext("code", "Matched"),  # run summaries (control totals)
    "discrepancies": lazy_pgettext("code", "Discrepancies"),
    "by_kind": lazy_pgettext("code", "By kind"),
    "already_resolved": lazy_pgettext("code", "Already resolved"),
    "backlog_before": lazy_pgettext("code", "Waiting before"),
    "backlog_after": lazy_pgettext("code", "Waiting after"),
    "original_amount": lazy_pgettext("code", "Original amount"),
    "outstanding": lazy_pgettext("code", "Outstanding"),
    "due_amount": lazy_pgettext("code", "Amount due"),
    "ingest_failed": lazy_pgettext("code", "Ingest failed"),  # reconciliation gaps' errors
    # refused payment notifications and bank-file transactions
    "malformed_json": lazy_pgettext("code", "Malformed JSON"),
    "invalid_text": lazy_pgettext("code", "Invalid text"),
    "missing_field": lazy_pgettext("code", "Missing field"),
    "invalid_field": lazy_pgettext("code", "Invalid field"),
    "invalid_amount": lazy_pgettext("code", "Invalid amount"),
    "invalid_paid_at": lazy_pgettext("code", "Invalid payment time"),
    "invalid_type": lazy_pgettext("code", "Invalid type"),
    "invalid_currency": lazy_pgettext("code", "Invalid currency"),
    "conflict": lazy_pgettext("code", "Conflict"),
    "unknown_loan": lazy_pgettext("code", "Unknown loan"),
    "cif_mismatch": lazy_pgettext("code", "CIF mismatch"),
    "currency_mismatch": lazy_pgettext("code", "Currency mismatch"),
    "unknown_payment": lazy_pgettext("code", "Unknown payment"),
    "already_reversed": lazy_pgettext("code", "Already reversed"),
    "not_reversible": lazy_pgettext("code", "Not reversible"),
    "reversal_mismatch": lazy_pgettext("code", "Reversal mismatch"),
    "body_too_large": lazy_pgettext("code", "Body too large"),
    "bad_id": lazy_pgettext("code", "Bad message id"),
    "bad_signature_format": lazy_pgettext("code", "Bad signature format"),
    "bad_timestamp": lazy_pgettext("code", "Bad timestamp"),
    "missing_id": lazy_pgettext("code", "Missing message id"),
    "missing_signature": lazy_pgettext("code", "Missing signature"),
    "missing_timestamp": lazy_pgettext("code", "Missing timestamp"),
    "no_secret_configured": lazy_pgettext("code", "No secret configured"),
    "signature_mismatch": lazy_pgettext("code", "Signature mismatch"),
    "no_loan_reference": lazy_pgettext("code", "No loan reference"),
    "ambiguous_loan_reference": lazy_pgettext("code", "Ambiguous loan reference"),
    "invalid_payment_reference": lazy_pgettext("code", "Invalid payment reference"),
    "reference_mismatch": lazy_pgettext("code", "Payment reference names another loan"),
    "missing_amount": lazy_pgettext("code", "Missing amount"),
    "missing_booking_date": lazy_pgettext("code", "Missing booking date"),
    "no_original_reference": lazy_pgettext("code", "No original reference"),
    "entry_details_mismatch": lazy_pgettext("code", "Entry details mismatch"),
    "control_sum_mismatch": lazy_pgettext("code", "Control sum mismatch"),
    "settled": lazy_pgettext("code", "Settled"),  # the payment system's transaction status
}

# Where a code means something else in one vocabulary: LABELS[kind][code].
LABELS: dict[str, dict[str, object]] = {
    "channel": {"manual": lazy_pgettext("code", "Entered by staff"),
                "webhook": lazy_pgettext("code", "Payment system")},
    "role": ROLE_LABELS,
    # kinds of change in the audit log (portal/audit.py callers)
    "audit_action": {
        "user.create": lazy_pgettext("code", "User created"),
        "user.update": lazy_pgettext("code", "User changed"),
        "user.deactivate": lazy_pgettext("code", "User deactivated"),
        "user.reactivate": lazy_pgettext("code", "User reactivated"),
        "user.unlock": lazy_pgettext("code", "User unlocked"),
        "user.password_reset": lazy_pgettext("code", "Password reset"),
        "user.temporary_password": lazy_pgettext("code", "Temporary password set"),
        "user.password_change": lazy_pgettext("code", "Password changed by the user"),
        "user.set_password": lazy_pgettext("code", "Password set"),
        "user.language_changed": lazy_pgettext("code", "Language changed"),
        "auth.lockout": lazy_pgettext("code", "Account locked out"),
        "team.create": lazy_pgettext("code", "Team created"),
        "team.update": lazy_pgettext("code", "Team changed"),
        "api_token.create": lazy_pgettext("code", "API token created"),
        "api_token.revoke": lazy_pgettext("code", "API token revoked"),
        "action_code.create": lazy_pgettext("code", "Action code created"),
        "action_code.update": lazy_pgettext("code", "Action code changed"),
        "case.assigned": lazy_pgettext("code", "Case assigned"),
        "promise.create": lazy_pgettext("code", "Promise recorded"),
        "promise.broken": lazy_pgettext("code", "Promise broken"),
        "promise.supersede": lazy_pgettext("code", "Promise replaced"),
        "settings.update": lazy_pgettext("code", "Settings changed"),
        "visit.approve": lazy_pgettext("code", "Visit approved"),
        "visit.reject": lazy_pgettext("code", "Visit rejected"),
        "discrepancy.resolve": lazy_pgettext("code", "Discrepancy resolved"),
        "field_device.register": lazy_pgettext("code", "Phone registered"),
        "field_device.unregister": lazy_pgettext("code", "Phone unregistered"),
        "invariants.check": lazy_pgettext("code", "Truth check run"),
        "ops.requeue_failed": lazy_pgettext("code", "Failed jobs requeued"),
        "ops.retry_dead_letters": lazy_pgettext("code", "Dead letters retried"),
        "payments.reconcile": lazy_pgettext("code", "Payments reconciled"),
        "seed.demo": lazy_pgettext("code", "Demo data loaded"),
        "promise.cancel": lazy_pgettext("code", "Promise cancelled"),
        "plan.create": lazy_pgettext("code", "Payment plan recorded"),
        "plan.cancel": lazy_pgettext("code", "Payment plan cancelled"),
        "plan.complete": lazy_pgettext("code", "Payment plan completed"),
        "plan.reopen": lazy_pgettext("code", "Payment plan reopened"),
        "plan.broken": lazy_pgettext("code", "Payment plan broken"),
        "plan.instalment_missed": lazy_pgettext("code", "Plan instalment missed"),
        "message.queue": lazy_pgettext("code", "Message queued"),
        "message.retry": lazy_pgettext("code", "Failed message retried"),
        "message_template.create": lazy_pgettext("code", "Message template created"),
        "message_template.update": lazy_pgettext("code", "Message template changed"),
        "message_template.retire": lazy_pgettext("code", "Message template retired"),
        "contact.messages_opt_out": lazy_pgettext("code", "Message opt-out changed"),
    },
    "audit_entity": {
        "user": lazy_pgettext("code", "User"),
        "team": lazy_pgettext("code", "Team"),
        "case": lazy_pgettext("code", "Case"),
        "customer": lazy_pgettext("code", "Customer"),
        "promise": lazy_pgettext("code", "Promise"),
        "api_token": lazy_pgettext("code", "API token"),
        "action_code": lazy_pgettext("code", "Action code"),
        "visit": lazy_pgettext("code", "Visit"),
        "app_setting": lazy_pgettext("code", "Setting"),
        "payment_plan": lazy_pgettext("code", "Payment plan"),
        "message": lazy_pgettext("code", "Message"),
        "message_template": lazy_pgettext("code", "Message template"),
        "phone": lazy_pgettext("code", "Phone"),
        "email": lazy_pgettext("code", "E-mail"),
    },
    # payment plans and their instalments (portal/cases/plans.py)
    # why a message was held (portal/cases/contact_rules.py HOLD_REASONS)
    "hold_reason": {
        "no_contact_point": lazy_pgettext("code", "No contact point to send to"),
        "do_not_contact": lazy_pgettext("code", "Contact point marked do-not-contact"),
        "opted_out": lazy_pgettext("code", "The customer opted out of messages here"),
        "unverified": lazy_pgettext("code", "Phone number not verified"),
        "wrong_party": lazy_pgettext("code", "Phone number reached a wrong party"),
        "quiet_hours": lazy_pgettext("code", "Quiet hours: waits for the sending hours"),
        "cap_reached": lazy_pgettext("code", "Message limit for this period reached"),
    },
    # a message's state (portal/models/messages.py MESSAGE_STATUSES) and channel
    "message_status": {
        "queued": lazy_pgettext("code", "Queued"),
        "sent": lazy_pgettext("code", "Sent"),
        "delivered": lazy_pgettext("code", "Delivered to the recipient"),
        "failed": lazy_pgettext("code", "Failed"),
        "held": lazy_pgettext("code", "Held"),
    },
    "message_channel": {
        "sms": lazy_pgettext("code", "SMS"),
        "email": lazy_pgettext("code", "E-mail"),
        "letter": lazy_pgettext("code", "Letter"),
    },
    "plan": {"active": lazy_pgettext("code", "In force")},
    "instalment": {"pending": lazy_pgettext("code", "Not yet paid"),
                   "kept": lazy_pgettext("code", "Paid on time"),
                   "missed": lazy_pgettext("code", "Late")},
}

_reported: set[str] = set()


def label(code, kind: str | None = None) -> str:
    """The words for ``code`` in the reader's language; "—" for none."""
    if code is None or code == "":
        return "—"
    key = str(code).strip().lower()
    found = LABELS.get(kind or "", {}).get(key) or COMMON.get(key)
    if found is not None:
        return str(found)
    if key not in _reported:
        _reported.add(key)
        log.warning("no label for code", extra={"code": str(code), "kind": kind})
    return humanize(code)


def humanize(value) -> str:
    """The fallback for a code with no label: "field_agent" → "Field agent"."""
    if not value:
        return ""
    text = str(value).replace("_", " ")
    return text[:1].upper() + text[1:].lower()
