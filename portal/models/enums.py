"""Closed vocabularies of the data model: one place, used by models (CHECK constraints),
services and forms. Bucket boundaries live here too."""

from __future__ import annotations

SOURCE_SYSTEMS = ("T24", "W4", "LOS", "CRM")
CUSTOMER_TYPES = ("INDIVIDUAL", "ORGANIZATION")
CUSTOMER_STATUSES = ("ACTIVE", "INACTIVE", "CLOSED", "DECEASED")
ROLES = ("agent", "field_agent", "supervisor", "ops", "admin", "auditor")

LOAN_STATUSES = ("OPEN", "CLOSED", "WRITTEN_OFF", "RESTRUCTURED")
CARD_STATUSES = ("ACTIVE", "BLOCKED", "CLOSED")
PHONE_TYPES = ("MOBILE", "HOME", "WORK", "OTHER")
# what an agent may enter a reference person as (labels: portal/labels.py); the bank's syncs
# send their own codes too (parent, relative, friend, ...), shown as they come
REFERENCE_RELATIONSHIPS = ("spouse", "guarantor", "co_signer", "parent", "sibling", "colleague",
                           "other")
ADDRESS_TYPES = ("HOME", "WORK", "MAILING", "OTHER")
EMAIL_TYPES = ("PERSONAL", "WORK", "OTHER")
RELATIONSHIP_TYPES = ("spouse", "guarantor", "co_signer", "parent", "child", "sibling",
                      "relative", "colleague", "friend", "other")

# DPD buckets: (name, lowest dpd, highest dpd or None). The one definition of bucket boundaries.
BUCKETS = (
    ("current", 0, 0),
    ("1-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, None),
)
BUCKET_NAMES = tuple(name for name, _, _ in BUCKETS)


def bucket_for_dpd(dpd: int) -> str:
    """The collection bucket of a number of days past due."""
    if dpd is None or dpd < 0:
        raise ValueError(f"dpd must be a non-negative integer, got {dpd!r}")
    for name, low, high in BUCKETS:
        if dpd >= low and (high is None or dpd <= high):
            return name
    raise AssertionError("unreachable: buckets cover every non-negative dpd")


CASE_STATUSES = ("open", "in_progress", "promised", "closed", "legal", "skip_trace")
# the processing states the system itself moves a case to (portal/cases/actions.move_case_on);
# every processing state, with its substates, is a value of the "processing_state" dictionary
# (status_values), which an admin extends
CASE_PROCESSING_STATES = ("new", "contacting", "negotiating", "monitoring", "escalated", "done")
# the dictionaries of statuses people set on a case (status_values.kind); each names the case
# column holding its current value (processing_state: the value's code, the others its id)
STATUS_KINDS = ("processing_state", "customer_status", "collateral_status", "recovery_ability",
                "lending_violation")
STATUS_CHANGE_SOURCES = ("manual", "system")
ACTION_TYPES = ("CALL", "VISIT", "SMS", "EMAIL", "LETTER")
ACTION_SOURCES = ("manual", "cti", "system")
# superseded: a pending promise replaced by a newer one (neither kept nor broken)
PROMISE_STATUSES = ("pending", "kept", "partially_kept", "broken", "cancelled", "superseded")
PAYMENT_STATUSES = ("received", "failed", "reversed")
PAYMENT_SOURCES = ("webhook", "reconciliation", "manual")
DISCREPANCY_KINDS = ("missing_in_crm", "missing_in_source", "amount_mismatch", "status_mismatch")
# superseded: an open gap a later reconciliation run of the same business date replaced
DISCREPANCY_STATUSES = ("open", "resolved", "ignored", "superseded")
CALL_DIRECTIONS = ("inbound", "outbound")
AGENT_STATUSES = ("available", "on_call", "wrap_up", "break", "offline")
AGENT_STATUS_SOURCES = ("portal", "cti", "system")
VISIT_STATUSES = ("planned", "checked_in", "completed", "cancelled", "missed")
VISIT_VERIFICATIONS = ("verified", "unverified", "manual_pending", "manual_approved", "rejected")
# why a stored GPS position cannot be true (portal/field/plausibility.py): such a point is kept,
# flagged, and left out of routes, distances, last positions and visit verification
IMPLAUSIBLE_REASONS = ("outside_service_area", "too_fast")
TIME_SOURCES = ("device", "received")  # agent_locations.time_source
# STRATEGIES: the strategies' daily run (portal.strategies.run), kind "assign"
INTEGRATIONS = ("T24", "W4", "LOS", "PAYMENTS", "CTI", "GPS", "EVENTS", "STRATEGIES")
# refresh: one customer fetched now from a source (integrations/refresh.py)
RUN_KINDS = ("sync", "reconcile", "forward", "assign", "refresh")
RUN_TRIGGERS = ("schedule", "manual", "webhook", "retry", "system")
# skipped: a triggered run that had nothing to do (its note says why)
RUN_STATUSES = ("running", "succeeded", "partial", "failed", "cancelled", "skipped")
DELIVERY_STATUSES = ("pending", "delivered", "failed", "dead")
