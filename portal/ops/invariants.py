"""The truths that tie the tables together, checked over the whole database.

Each ``Invariant`` names a truth and finds the rows that break it (their ids, and what was
expected). ``check_all`` runs every one in a savepoint it rolls back, so a check may recompute
with the product's own functions (one definition of each figure: the case totals are
``cases.queue.recompute_case_totals``, the priority ``cases.queue.compute_priority``) and compare
without changing anything. ``flask check invariants`` prints the violations and exits non-zero
when there is one; the nightly job (``Jobs.CHECK_INVARIANTS``) stores its result as an
``InvariantRun`` that the ops page shows.

A feature that adds a truth adds its check to ``INVARIANTS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal import audit, clock, run_counts
from portal.cases import account_checks, plans, statuses
from portal.cases.queue import compute_priority, priority_inputs, recompute_case_totals
from portal.documents import operations as documents
from portal.events.subscribers import all_subscribers, load_subscribers
from portal.field import plausibility
from portal.messages import letters
from portal.models import Case
from portal.models.ops import InvariantRun
from portal.notifications.messages import N_
from portal.placements import operations as placements
from portal.queues import enqueue
from portal.schedules import Jobs
from portal.strategies import checks as strategy_checks

log = logging.getLogger(__name__)

SAMPLE = 20  # violations kept per invariant (the count is always whole)
# the schedule refreshes priorities hourly: time alone (a follow-up coming due, one more day of
# silence) may have moved a priority since, and that is not a stale priority
PRIORITY_REFRESH = timedelta(hours=1)


@dataclass(frozen=True)
class Invariant:
    name: str
    description: str
    find: Callable[[Session, datetime], list[dict]]


@dataclass
class Result:
    name: str
    description: str
    violations: int
    sample: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "violations": self.violations, "sample": self.sample,
                "seconds": round(self.seconds, 3), "error": self.error}


def _rows(session: Session, sql: str, **params) -> list[dict]:
    return [dict(row._mapping) for row in session.execute(text(sql), params)]


def _jsonable(row: dict) -> dict:
    return {k: (str(v) if isinstance(v, Decimal | datetime | date) else v)
            for k, v in row.items()}


# -- the checks ------------------------------------------------------------------------------


def _totals_text(overdue, dpd, outstanding, products) -> str:
    return (f"overdue {overdue}, max DPD {dpd}, outstanding {outstanding}, "
            f"products {'/'.join(products) or 'none'}")


def case_totals_recompute(session: Session, now: datetime) -> list[dict]:
    """Each case's overdue, max DPD, outstanding and products as recomputed from its products."""
    before = {r.id: r for r in session.execute(select(
        Case.id, Case.cif, Case.total_overdue, Case.max_dpd, Case.total_outstanding,
        Case.products))}
    recompute_case_totals(session)
    after = session.execute(select(
        Case.id, Case.total_overdue, Case.max_dpd, Case.total_outstanding, Case.products))
    wrong = []
    for row in after:
        old = before[row.id]
        stored = (old.total_overdue, old.max_dpd, old.total_outstanding, list(old.products or []))
        fresh = (row.total_overdue, row.max_dpd, row.total_outstanding, list(row.products or []))
        if stored != fresh:
            wrong.append({"case_id": row.id, "cif": old.cif,
                          "stored": _totals_text(*stored), "recomputed": _totals_text(*fresh)})
    return wrong


def case_priority_recompute(session: Session, now: datetime) -> list[dict]:
    """Each open case's priority as the queue's formula gives it from the case's inputs (now, at
    the last hourly refresh, or when the case was last written within the hour: what time alone
    changed since is not stale)."""
    earlier = now - PRIORITY_REFRESH
    then = {case_id: inputs for case_id, _, inputs in priority_inputs(session, earlier)}
    cifs = dict(session.execute(select(Case.id, Case.cif).where(Case.status != "closed")).all())
    wrong = []
    for case_id, stored, inputs in priority_inputs(session, now):
        fresh = compute_priority(inputs, now)
        before = compute_priority(then[case_id], earlier) if case_id in then else fresh
        if stored not in (fresh, before) and stored != _priority_when_written(
                session, case_id, earlier, now):
            wrong.append({"case_id": case_id, "cif": cifs.get(case_id), "stored": stored,
                          "recomputed": fresh})
    return wrong


def _priority_when_written(session: Session, case_id: int, earlier: datetime,
                           now: datetime) -> int | None:
    """The priority a case written within the hour got then (a silent day or a follow-up may
    have come due since), or None."""
    written = session.scalar(select(Case.updated_at).where(Case.id == case_id))
    if written is None or not earlier < written <= now:
        return None
    [(_, _, inputs)] = priority_inputs(session, written, [case_id])
    return compute_priority(inputs, written)


def promises_follow_allocations(session: Session, now: datetime) -> list[dict]:
    """Each promise's paid amount is what the standing allocations give it, and its status
    follows: kept when fully paid; broken only after its date; not still open the day after
    its date has passed (the hourly job breaks it)."""
    return _rows(session, """
        SELECT p.id AS promise_id, p.cif, p.status, p.amount, p.paid_amount,
               coalesce(a.given, 0) AS allocated, p.promised_date
        FROM promises p
        LEFT JOIN (SELECT promise_id, sum(amount) AS given FROM promise_allocations
                   WHERE reversed_at IS NULL GROUP BY promise_id) a ON a.promise_id = p.id
        WHERE p.paid_amount <> coalesce(a.given, 0)
           OR (p.status IN ('pending', 'partially_kept', 'broken')
               AND coalesce(a.given, 0) >= p.amount)
           OR (p.status = 'kept' AND coalesce(a.given, 0) < p.amount)
           OR (p.status = 'pending' AND coalesce(a.given, 0) > 0)
           OR (p.status = 'broken' AND p.promised_date >= :today)
           OR (p.status IN ('pending', 'partially_kept') AND p.promised_date < :overdue)
        ORDER BY p.id""", today=clock.bank_today(now),
        overdue=clock.bank_today(now) - timedelta(days=1))


def payments_not_over_allocated(session: Session, now: datetime) -> list[dict]:
    """No payment gives promises more than it is, and only a standing payment gives at all."""
    return _rows(session, """
        SELECT pay.id AS payment_id, pay.reference_number, pay.amount, pay.status,
               sum(a.amount) AS allocated
        FROM promise_allocations a JOIN payments pay ON pay.id = a.payment_id
        WHERE a.reversed_at IS NULL
        GROUP BY pay.id
        HAVING sum(a.amount) > pay.amount OR pay.status <> 'received'
        ORDER BY pay.id""")


def loan_due_follows_payments(session: Session, now: datetime) -> list[dict]:
    """A loan's due is the bank's due less the payments standing since its last sync: the
    payments since then took off the due exactly what they applied, unless the due reached 0."""
    return _rows(session, """
        SELECT l.account_number, l.due_amount, s.applied, s.taken
        FROM loans l
        JOIN (SELECT pay.account_number, sum(pay.applied_amount) AS applied,
                     sum(pay.due_applied) AS taken
              FROM payments pay JOIN loans l2 ON l2.account_number = pay.account_number
              WHERE l2.last_synced_at IS NULL OR pay.effects_at > l2.last_synced_at
              GROUP BY pay.account_number) s ON s.account_number = l.account_number
        WHERE l.due_amount < 0 OR s.taken > s.applied OR s.taken < 0
           OR (l.due_amount > 0 AND s.taken <> s.applied)
        ORDER BY l.account_number""")


def payments_applied_as_their_status(session: Session, now: datetime) -> list[dict]:
    """A received payment counts in full in the balances; a reversed or failed one not at all."""
    return _rows(session, """
        SELECT id AS payment_id, reference_number, status, amount, applied_amount
        FROM payments
        WHERE effects_at IS NOT NULL AND applied_amount <> CASE
              WHEN status = 'received' AND original_reference IS NULL THEN amount ELSE 0 END
        ORDER BY id""")


def one_primary_contact_per_type(session: Session, now: datetime) -> list[dict]:
    """No customer (or reference person) has two primary contacts of one type."""
    return _rows(session, """
        SELECT 'phone' AS kind, coalesce(cif, ref_cif) AS owner, type, count(*) AS primaries,
               array_agg(id ORDER BY id) AS ids
        FROM phones WHERE is_primary GROUP BY 2, type HAVING count(*) > 1
        UNION ALL
        SELECT 'address', coalesce(cif, ref_cif), type, count(*), array_agg(id ORDER BY id)
        FROM addresses WHERE is_primary GROUP BY 2, type HAVING count(*) > 1
        UNION ALL
        SELECT 'email', coalesce(cif, ref_cif), type, count(*), array_agg(id ORDER BY id)
        FROM emails WHERE is_primary GROUP BY 2, type HAVING count(*) > 1
        ORDER BY 1, 2, 3""")


def events_delivered_or_pending(session: Session, now: datetime) -> list[dict]:
    """Every relayed event has a delivery row for each subscriber of its type (one that
    existed when it was relayed: since that subscriber's first delivery); an event without its
    deliveries is still pending relay."""
    load_subscribers()
    pairs = [(t, s.name) for s in all_subscribers() for t in s.event_types]
    if not pairs:
        return []
    values = ", ".join(f"(:t{i}, :s{i})" for i in range(len(pairs)))
    params = {}
    for i, (event_type, name) in enumerate(pairs):
        params[f"t{i}"], params[f"s{i}"] = event_type, name
    return _rows(session, f"""
        WITH subs(type, subscriber) AS (VALUES {values}),
             since AS (SELECT subscriber, min(enqueued_at) AS first_at FROM event_deliveries
                       GROUP BY subscriber)
        SELECT e.id::text AS event_id, e.type, subs.subscriber
        FROM events e
        JOIN subs ON subs.type = e.type
        JOIN since ON since.subscriber = subs.subscriber AND e.relayed_at >= since.first_at
        WHERE e.relayed_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM event_deliveries d
                          WHERE d.event_id = e.id AND d.subscriber = subs.subscriber)
        ORDER BY e.seq""", **params)


def outbound_calls_outside_the_window_flagged(session: Session, now: datetime) -> list[dict]:
    """An outbound call outside the contact window is flagged as a breach (since the rules last
    changed: older calls were judged by the rules of their day); an inbound call never is, and
    a flag names a window the call was outside."""
    return _rows(session, """
        WITH w AS (
            SELECT COALESCE(NULLIF(s.value->>'window_start', ''), '07:00')::time AS opens,
                   COALESCE(NULLIF(s.value->>'window_end', ''), '21:00')::time AS closes,
                   COALESCE(s.updated_at, '-infinity') AS since
            FROM (SELECT 1) one LEFT JOIN app_settings s ON s.key = 'contact_rules'
        ), calls AS (
            SELECT r.id, r.call_id, r.agent_id, r.direction, r.started_at, r.window_breach,
                   (r.started_at AT TIME ZONE :zone)::time AS local
            FROM call_records r
        )
        SELECT c.id AS call_record_id, c.call_id, c.agent_id, c.direction, c.started_at,
               c.window_breach,
               CASE WHEN c.direction = 'inbound' THEN 'inbound call flagged'
                    WHEN c.window_breach IS NULL THEN 'outbound call outside the window'
                    ELSE 'flagged inside the window it names' END AS problem
        FROM calls c, w
        WHERE (c.direction = 'inbound' AND c.window_breach IS NOT NULL)
           OR (c.direction = 'outbound' AND c.window_breach IS NULL AND c.started_at >= w.since
               AND NOT (c.local >= w.opens AND c.local < w.closes))
           OR (c.window_breach IS NOT NULL
               AND c.local >= split_part(c.window_breach, '–', 1)::time
               AND c.local < split_part(c.window_breach, '–', 2)::time)
        ORDER BY c.id""", zone=str(clock.bank_zone()))


def products_follow_their_moves(session: Session, now: datetime) -> list[dict]:
    """A product whose latest move was applied belongs to the customer it moved to."""
    return _rows(session, """
        SELECT move_id, product, product_key, new_cif, current_cif FROM (
          SELECT DISTINCT ON (m.product, m.product_key) m.id AS move_id, m.product,
                 m.product_key, m.new_cif, coalesce(l.cif, c.cif, a.cif) AS current_cif
          FROM product_owner_moves m
          LEFT JOIN loans l ON m.product = 'loan' AND l.account_number = m.product_key
          LEFT JOIN cards c ON m.product = 'card' AND c.contract_number = m.product_key
          LEFT JOIN loan_applications a ON m.product = 'application'
                                        AND a.application_id = m.product_key
          WHERE m.status = 'applied'
          ORDER BY m.product, m.product_key, m.decided_at DESC, m.id DESC) latest
        WHERE current_cif IS DISTINCT FROM new_cif
        ORDER BY move_id""")


def applied_moves_published(session: Session, now: datetime) -> list[dict]:
    """Every applied move published its PRODUCT_OWNER_CHANGED event."""
    return _rows(session, """
        SELECT m.id AS move_id, m.product_key FROM product_owner_moves m
        WHERE m.status = 'applied' AND NOT EXISTS (
          SELECT 1 FROM events e WHERE e.type = 'PRODUCT_OWNER_CHANGED'
            AND e.aggregate_id = m.product_key AND (e.payload->>'move_id')::bigint = m.id)
        ORDER BY m.id""")


def moves_decided(session: Session, now: datetime) -> list[dict]:
    """A move is pending only while its run is running: a finished run applied or held it."""
    return _rows(session, """
        SELECT m.id AS move_id, m.run_id, r.status AS run_status
        FROM product_owner_moves m LEFT JOIN integration_runs r ON r.id = m.run_id
        WHERE m.status = 'pending' AND (r.id IS NULL OR r.status <> 'running')
        ORDER BY m.id""")


def one_open_gap_per_key(session: Session, now: datetime) -> list[dict]:
    """A reconciled date lists each gap once: a re-run supersedes the open ones before it."""
    return _rows(session, """
        SELECT r.integration, r.business_date, d.kind, d.key,
               array_agg(d.id ORDER BY d.id) AS discrepancy_ids
        FROM discrepancies d JOIN reconciliation_runs r ON r.id = d.run_id
        WHERE d.status = 'open'
        GROUP BY r.integration, r.business_date, d.kind, d.key HAVING count(*) > 1
        ORDER BY 1, 2, 3, 4""")


def superseded_by_a_later_run(session: Session, now: datetime) -> list[dict]:
    """A superseded gap names a later run of the same integration and date."""
    return _rows(session, """
        SELECT d.id AS discrepancy_id, d.run_id, d.superseded_by_run_id
        FROM discrepancies d JOIN reconciliation_runs r ON r.id = d.run_id
        LEFT JOIN reconciliation_runs s ON s.id = d.superseded_by_run_id
        WHERE d.status = 'superseded' AND (s.id IS NULL OR s.integration <> r.integration
              OR s.business_date <> r.business_date OR s.id = r.id)
        ORDER BY d.id""")


def reconciliation_counts_its_gaps(session: Session, now: datetime) -> list[dict]:
    """A finished reconciliation run's gap count equals its discrepancy rows."""
    return _rows(session, """
        SELECT r.id AS reconciliation_run_id, r.discrepancy_count, count(d.id) AS rows
        FROM reconciliation_runs r LEFT JOIN discrepancies d ON d.run_id = r.id
        WHERE r.status <> 'running'
        GROUP BY r.id HAVING r.discrepancy_count <> count(d.id)
        ORDER BY r.id""")


def stored_kpi_days_match_actions(session: Session, now: datetime) -> list[dict]:
    """The stored per-agent days of the KPI aggregates count what the actions say."""
    return _rows(session, """
        WITH m AS (SELECT (value->>'since')::date AS s, (value->>'through')::date AS t
                   FROM app_settings WHERE key = 'kpi.aggregates'),
        raw AS (
          SELECT a.agent_id, (a.at AT TIME ZONE :zone)::date AS day,
                 count(*) FILTER (WHERE a.type IN ('CALL', 'VISIT')
                                  AND a.action_code_id IS NOT NULL) AS attempts,
                 count(*) FILTER (WHERE a.type IN ('CALL', 'VISIT') AND c.is_contact) AS contacts
          FROM actions a LEFT JOIN action_codes c ON c.id = a.action_code_id
          JOIN users u ON u.id = a.agent_id
          WHERE a.type <> 'SYSTEM' AND u.role IN ('agent', 'field_agent') GROUP BY 1, 2)
        SELECT coalesce(k.agent_id, r.agent_id) AS agent_id, coalesce(k.day, r.day) AS day,
               k.attempts, k.contacts, r.attempts AS raw_attempts, r.contacts AS raw_contacts
        FROM kpi_agent_daily k FULL JOIN raw r ON r.agent_id = k.agent_id AND r.day = k.day, m
        WHERE coalesce(k.day, r.day) BETWEEN m.s AND m.t
          AND (coalesce(k.attempts, 0), coalesce(k.contacts, 0))
              IS DISTINCT FROM (coalesce(r.attempts, 0), coalesce(r.contacts, 0))
        ORDER BY 1, 2""", zone=str(clock.bank_zone()))


def run_counts_consistent(session: Session, now: datetime) -> list[dict]:
    """Every finished run counts each record once (portal/run_counts.py's definition)."""
    return _rows(session, run_counts.INCONSISTENT_SQL)


def camt_transactions_accounted(session: Session, now: datetime) -> list[dict]:
    """Every transaction of an imported camt file is kept once with its outcome, the import's
    counts are those rows', and each row points where its outcome says it went: a payment
    (accepted, duplicate) or the refused-notifications log (refused)."""
    return _rows(session, """
        SELECT i.id AS import_id, i.transactions, i.accepted, i.duplicates, i.refused, i.skipped,
               i.accepted_total, count(t.id) AS rows_kept,
               count(*) FILTER (WHERE t.outcome = 'accepted') AS rows_accepted,
               count(*) FILTER (WHERE t.outcome = 'duplicate') AS rows_duplicate,
               count(*) FILTER (WHERE t.outcome = 'refused') AS rows_refused,
               count(*) FILTER (WHERE t.outcome = 'skipped') AS rows_skipped,
               coalesce(sum(t.amount) FILTER (WHERE t.outcome = 'accepted'), 0) AS rows_total,
               count(*) FILTER (WHERE t.outcome IN ('accepted', 'duplicate')
                                  AND t.payment_id IS NULL) AS without_payment,
               count(*) FILTER (WHERE t.outcome = 'refused' AND t.rejection_id IS NULL)
                   AS refused_unlogged
        FROM camt_imports i
        LEFT JOIN camt_import_transactions t ON t.import_id = i.id
        GROUP BY i.id
        HAVING i.transactions <> count(t.id)
            OR i.accepted <> count(*) FILTER (WHERE t.outcome = 'accepted')
            OR i.duplicates <> count(*) FILTER (WHERE t.outcome = 'duplicate')
            OR i.refused <> count(*) FILTER (WHERE t.outcome = 'refused')
            OR i.skipped <> count(*) FILTER (WHERE t.outcome = 'skipped')
            OR i.accepted_total <> coalesce(sum(t.amount) FILTER (WHERE t.outcome = 'accepted'), 0)
            OR count(*) FILTER (WHERE t.outcome IN ('accepted', 'duplicate')
                                  AND t.payment_id IS NULL) > 0
            OR count(*) FILTER (WHERE t.outcome = 'refused' AND t.rejection_id IS NULL) > 0
        ORDER BY i.id""")


def positions_plausible(session: Session, now: datetime) -> list[dict]:
    """No flagged GPS point counts in a route, a verification or the forwarding."""
    return plausibility.violations(session)


def one_pending_promise(session: Session, now: datetime) -> list[dict]:
    """At most one pending promise per account of a customer (and per whole customer); a
    superseded promise names its replacement (same customer and account), when, and holds no
    money."""
    return _rows(session, """
        SELECT 'two pending' AS problem, cif, account_number,
               array_agg(id ORDER BY id) AS promise_ids
        FROM promises WHERE status = 'pending' GROUP BY cif, account_number
        HAVING count(*) > 1
        UNION ALL
        SELECT 'superseded without its replacement', p.cif, p.account_number, ARRAY[p.id]
        FROM promises p LEFT JOIN promises r ON r.id = p.replacement_id
        WHERE p.status = 'superseded' AND (r.id IS NULL OR r.cif <> p.cif
           OR r.account_number IS DISTINCT FROM p.account_number
           OR p.superseded_at IS NULL OR p.paid_amount <> 0)
        ORDER BY 2, 3""")


def phones_normalised(session: Session, now: datetime) -> list[dict]:
    """Every phone is stored with its E.164 form."""
    return _rows(session, """
        SELECT id AS phone_id, cif, ref_cif FROM phones WHERE number_e164 IS NULL ORDER BY id""")


def assignment_history_follows_cases(session: Session, now: datetime) -> list[dict]:
    """A case's assignment history (case_assignments, shown on the case view) ends where the
    case is: at most one open row per case and role (call, field), and the open one names the
    agent holding that side of the case; no row ends before it began."""
    return _rows(session, """
        SELECT a.case_id, a.role, count(*) AS open_rows, array_agg(a.agent_id) AS history_agents,
               max(CASE a.role WHEN 'agent' THEN c.assigned_agent_id
                   ELSE c.assigned_field_agent_id END) AS case_holder
        FROM case_assignments a JOIN cases c ON c.id = a.case_id
        WHERE a.unassigned_at IS NULL
        GROUP BY a.case_id, a.role
        HAVING count(*) > 1 OR bool_or(a.agent_id IS DISTINCT FROM CASE a.role
               WHEN 'agent' THEN c.assigned_agent_id ELSE c.assigned_field_agent_id END)
        UNION ALL
        SELECT case_id, role, 0, ARRAY[agent_id], NULL FROM case_assignments
        WHERE unassigned_at < assigned_at
        ORDER BY 1, 2""")


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("case_totals", N_("case totals and products equal a fresh recompute"),
              case_totals_recompute),
    Invariant("case_priority", N_("case priorities equal a fresh recompute"),
              case_priority_recompute),
    Invariant("promise_allocations", N_("each promise's paid amount and status follow the "
              "payments allocated to it"), promises_follow_allocations),
    Invariant("payment_allocations", N_("no payment is allocated beyond its amount, and only "
              "standing payments are"), payments_not_over_allocated),
    Invariant("payment_applied", N_("each payment counts in the balances as its status says"),
              payments_applied_as_their_status),
    Invariant("loan_due", N_("each loan's due is the bank's due less the payments standing since "
              "its last sync"), loan_due_follows_payments),
    Invariant("primary_contacts", N_("no customer has two primary contacts of one type"),
              one_primary_contact_per_type),
    Invariant("pending_promises", N_("at most one pending promise per account, and a superseded "
              "one names its replacement"), one_pending_promise),
    Invariant("phones_normalised", N_("every phone is stored normalised (E.164)"),
              phones_normalised),
    Invariant("event_deliveries", N_("every relayed event has its deliveries"),
              events_delivered_or_pending),
    Invariant("product_owners", N_("a product whose move was applied belongs to its new "
              "customer"), products_follow_their_moves),
    Invariant("owner_moves_published", N_("every applied move between customers was published"),
              applied_moves_published),
    Invariant("owner_moves_decided", N_("no move is left pending after its run"),
              moves_decided),
    Invariant("open_gaps", N_("a reconciled date lists each gap once"), one_open_gap_per_key),
    Invariant("superseded_gaps", N_("a superseded gap names the later run that replaced it"),
              superseded_by_a_later_run),
    Invariant("reconciliation_counts", N_("a reconciliation run counts the gaps it lists"),
              reconciliation_counts_its_gaps),
    Invariant("accounts", N_("no account contradicts itself (days past due, amounts due, "
              "next payment date)"), account_checks.violations),
    Invariant("kpi_days", N_("the stored KPI days count what the actions say"),
              stored_kpi_days_match_actions),
    Invariant("run_counts", N_("every run's counts are consistent"), run_counts_consistent),
    Invariant("gps_points", N_("no flagged GPS point counts in a route, a verification or the "
              "forwarding"), positions_plausible),
    Invariant("case_statuses", N_("each case's statuses are values of their lists and its "
              "latest history entries, and each master note its latest version"),
              statuses.violations),
    Invariant("call_window_breaches", N_("every outbound call outside the contact window is "
              "flagged as a breach"), outbound_calls_outside_the_window_flagged),
    Invariant("case_assignments", N_("each case's assignment history ends with the agents "
              "holding the case"), assignment_history_follows_cases),
    Invariant("payment_plans", N_("each payment plan's instalments add up to its total, are paid "
              "what is allocated to them, and its status follows them; one active plan per "
              "customer"), plans.violations),
    Invariant("camt_transactions", N_("every transaction of an imported camt file is kept once "
              "with its outcome, and went where its outcome says"), camt_transactions_accounted),
    Invariant("placements", N_("a case has at most one active placement, a placed case is in "
              "no agent's queue, and each agency's collected amount is the sum of its "
              "payments"), placements.violations),
    Invariant("documents", N_("each document's file is in the store with its recorded size, "
              "and a visit photo is of its visit's customer"), documents.violations),
    Invariant("strategy_assignments", N_("each account is in at most one step of one active "
              "strategy per day, and each strategy message names its account's assignment"),
              strategy_checks.violations),
    Invariant("print_batches", N_("each print batch counts its letters and pages, its letters "
              "are sent (delivered once it is handed over), and no letter is sent outside a "
              "batch"), letters.violations),
)
INVARIANT_WORDS = {i.name: i.description for i in INVARIANTS}  # msgids, shown translated


def check_all(session: Session, *, now: datetime | None = None,
              names: list[str] | None = None) -> list[Result]:
    """Run the invariants (all, or those ``names``); nothing is changed."""
    now = now or clock.now()
    results = []
    for invariant in INVARIANTS:
        if names and invariant.name not in names:
            continue
        started = time.perf_counter()
        savepoint = session.begin_nested()
        try:
            found = invariant.find(session, now)
            result = Result(invariant.name, invariant.description, len(found),
                            [_jsonable(r) for r in found[:SAMPLE]])
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            log.exception("invariant %s could not run", invariant.name)
            result = Result(invariant.name, invariant.description, 0,
                            error=f"{type(exc).__name__}: {exc}"[:500])
        finally:
            savepoint.rollback()
        result.seconds = time.perf_counter() - started
        results.append(result)
    session.expire_all()
    return results


def record_run(session: Session, results: list[Result], *, trigger: str,
               started_at: datetime, triggered_by_id: int | None = None) -> InvariantRun:
    """Store a check's results (no commit)."""
    run = InvariantRun(
        started_at=started_at, finished_at=clock.now(), trigger=trigger,
        triggered_by_id=triggered_by_id,
        violations=sum(r.violations for r in results),
        errors=sum(1 for r in results if r.error),
        results=[r.as_dict() for r in results])
    session.add(run)
    session.flush()
    return run


def run_and_record(session: Session, *, trigger: str,
                   triggered_by_id: int | None = None) -> InvariantRun:
    """The nightly job's (and the ops button's) body: check everything, store the result,
    commit."""
    started = clock.now()
    results = check_all(session, now=started)
    run = record_run(session, results, trigger=trigger, started_at=started,
                     triggered_by_id=triggered_by_id)
    session.commit()
    return run


def latest_run(session: Session) -> InvariantRun | None:
    return session.scalar(select(InvariantRun).order_by(InvariantRun.id.desc()).limit(1))


def recent_runs(session: Session, limit: int = 30) -> list[InvariantRun]:
    return list(session.scalars(select(InvariantRun).order_by(InvariantRun.id.desc())
                                .limit(limit)))


def request_check(session: Session, user) -> str:
    """Queue a check now (the ops page's button); audited. Returns the job id. Raises
    QueueUnavailable when Redis cannot take it."""
    try:
        job = enqueue("default", Jobs.CHECK_INVARIANTS, "manual", user.id)
    except Exception as exc:  # noqa: BLE001 - Redis down: the page says so
        raise QueueUnavailable("The job queue is unavailable; try again in a moment.") from exc
    audit.record(session, user, "invariants.check", "invariants", "all",
                 after={"job_id": job.id})
    session.commit()
    return job.id


class QueueUnavailable(Exception):
    pass
