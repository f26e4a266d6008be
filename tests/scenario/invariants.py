"""What must hold at the end of any day, faults or not — each computed here from the sources
(the T24 file, W4's cards, the payment system's and the call centre's own records, the event
catalogue's subscribers), never from the portal's own bookkeeping of the same thing."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import text

from tests.scenario.harness import POISON_SUBSCRIBER, Day

ZERO = Decimal(0)
OPEN = ("pending", "partially_kept")


def rows(day: Day, query: str, **params) -> list:
    result = day.db.session.execute(text(query), params).all()
    day.db.session.rollback()
    return result


def payment_truth(day: Day) -> dict[str, dict]:
    with day.systems.payments.lock:
        return {ref: dict(t) for ref, t in day.systems.payments.transactions.items()}


def every_payment_once(day: Day) -> None:
    truth = payment_truth(day)
    crm = rows(day, "SELECT reference_number, amount, status FROM payments")
    counts = Counter(r.reference_number for r in crm)
    assert [ref for ref, n in counts.items() if n > 1] == [], "payments stored twice"
    assert set(counts) == set(truth), (
        f"missing in CRM: {sorted(set(truth) - set(counts))[:5]}, "
        f"unknown to the payment system: {sorted(set(counts) - set(truth))[:5]}")
    for r in crm:
        source = truth[r.reference_number]
        assert (r.amount, r.status) == (Decimal(source["amount"]), source["status"]), \
            (r.reference_number, r.amount, r.status, source)
    kinds = Counter(t["type"] for t in truth.values())
    events = dict(rows(day, "SELECT type, count(*) FROM events WHERE type LIKE 'PAYMENT_%' "
                            "GROUP BY type"))
    assert events == {"PAYMENT_RECEIVED": kinds["payment.received"],
                      "PAYMENT_FAILED": kinds["payment.failed"],
                      "PAYMENT_REVERSED": kinds["payment.reversed"]}, (events, kinds)


def net_paid(day: Day) -> dict[str, Decimal]:
    """Per loan: what the payments still standing (received, not reversed) add up to."""
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for t in payment_truth(day).values():
        if t["type"] == "payment.received" and t["status"] == "received":
            paid[t["loan_account_number"]] += Decimal(t["amount"])
    return paid


def loan_balances_equal_the_source(day: Day) -> None:
    """T24's balance less the payments standing since (the bank's figure until its next file);
    cards as W4 serves them. The due amount likewise: the bank's due less the payments
    standing, never below zero, whatever order payments and reversals arrived in."""
    paid = net_paid(day)
    loans = {r.account_number: r for r in rows(
        day, "SELECT account_number, cif, outstanding, due_amount, status FROM loans "
             "WHERE source_system = 'T24'")}
    assert set(loans) == set(day.record.loans), "loans differ from the T24 file"
    wrong = []
    for account, source in day.record.loans.items():
        source_due = Decimal(source["due_amount"] or 0)
        expected = max(ZERO, Decimal(source["outstanding"]) - paid[account])
        due = max(ZERO, source_due - paid[account])
        loan = loans[account]
        if (loan.outstanding, loan.due_amount, loan.cif, loan.status) != (
                expected, due, source["cif"], source["status"]):
            wrong.append((account, loan.outstanding, expected, loan.due_amount, due))
    assert not wrong, f"{len(wrong)} loan balances differ from the source, e.g. {wrong[:3]}"
    cards = {r.contract_number: r.outstanding for r in rows(
        day, "SELECT contract_number, outstanding FROM cards")}
    assert cards == {number: Decimal(str(record["total_balance"]))
                     for number, record in day.record.cards.items()}, "cards differ from W4"
    applications = {r.application_id for r in rows(day, "SELECT application_id FROM "
                                                        "loan_applications")}
    assert applications == set(day.record.applications), "applications differ from LOS"


def promises_follow_the_payments(day: Day) -> None:
    """Recomputed from the promises' amounts and dates and the payments standing: each promise's
    paid amount is what standing payments allocated to it; its status follows from that and its
    date (the night has passed); no payment gives more than it has; and no promise is left open
    while a standing payment it could take still has money unallocated."""
    truth = payment_truth(day)
    payments = {r.id: r for r in rows(
        day, "SELECT id, reference_number, cif, account_number, amount, currency FROM payments")}
    allocations = rows(day, "SELECT promise_id, payment_id, amount FROM promise_allocations "
                            "WHERE reversed_at IS NULL")
    given: dict[int, Decimal] = defaultdict(Decimal)
    taken: dict[int, Decimal] = defaultdict(Decimal)
    for a in allocations:
        source = truth[payments[a.payment_id].reference_number]
        assert source["type"] == "payment.received" and source["status"] == "received", \
            f"an allocation stands on {source['reference_number']} ({source['status']})"
        given[a.payment_id] += a.amount
        taken[a.promise_id] += a.amount
    for payment_id, amount in given.items():
        assert amount <= payments[payment_id].amount, f"payment {payment_id} over-allocated"
    night = day.today + timedelta(days=1)
    promises = rows(day, "SELECT id, cif, account_number, amount, currency, promised_date, "
                         "status, paid_amount FROM promises")
    assert len(promises) == day.record.promises
    wrong = []
    for p in promises:
        paid = taken[p.id]
        if paid >= p.amount:
            expected = "kept"
        elif p.promised_date < night:
            expected = "broken"
        else:
            expected = "partially_kept" if paid else "pending"
        if (p.paid_amount, p.status) != (paid, expected):
            wrong.append((p.id, p.status, expected, p.paid_amount, paid))
    assert not wrong, f"{len(wrong)} promises do not follow the payments: {wrong[:3]}"
    for p in promises:
        if p.status not in OPEN:
            continue
        for pay in payments.values():
            source = truth[pay.reference_number]
            if source["type"] != "payment.received" or source["status"] != "received":
                continue
            if pay.cif == p.cif and pay.currency == p.currency and p.account_number in (
                    None, pay.account_number):
                assert given[pay.id] >= pay.amount, (
                    f"promise {p.id} open while payment {pay.reference_number} has money left")


def events_delivered_once_per_subscriber(day: Day) -> dict[tuple[str, str], int]:
    """events × subscribers_for(type) = deliveries, each delivered once (the poisoned one
    dead); returns the dead letters."""
    from portal.events.subscribers import subscribers_for

    events = rows(day, "SELECT id, type FROM events")
    deliveries = rows(day, "SELECT event_id, subscriber, status FROM event_deliveries")
    pairs = Counter((d.event_id, d.subscriber) for d in deliveries)
    assert [k for k, n in pairs.items() if n > 1] == [], "a delivery row twice"
    expected = {(e.id, s.name) for e in events for s in subscribers_for(e.type)}
    assert set(pairs) == expected, (
        f"missing: {list(expected - set(pairs))[:5]}, extra: {list(set(pairs) - expected)[:5]}")
    status = Counter(d.status for d in deliveries)
    assert set(status) <= {"delivered", "dead"}, status
    dead = {(d.event_id, d.subscriber) for d in deliveries if d.status == "dead"}
    # the payment effects ran once per event: one timeline action per payment event
    actions = rows(day, "SELECT count(*) FROM actions WHERE type = 'SYSTEM' AND "
                        "subtype = 'PAYMENT'")[0][0]
    payment_events = rows(day, "SELECT count(*) FROM events WHERE type IN "
                               "('PAYMENT_RECEIVED', 'PAYMENT_REVERSED', 'PAYMENT_FAILED')")[0][0]
    assert actions == payment_events, (actions, payment_events)
    return {k: 1 for k in dead}


def only_the_poisoned_dead_letter(day: Day) -> None:
    dead = rows(day, "SELECT e.type, e.payload->>'reference_number' AS ref, d.subscriber "
                     "FROM event_deliveries d JOIN events e ON e.id = d.event_id "
                     "WHERE d.status = 'dead'")
    assert [(r.type, r.ref, r.subscriber) for r in dead] == [
        ("PAYMENT_FAILED", day.record.poison_reference, POISON_SUBSCRIBER)], dead


def positions_forwarded_once(day: Day) -> None:
    stored = rows(day, "SELECT id, forwarded_at FROM agent_locations")
    assert len(stored) >= day.record.positions_posted > 0
    assert all(r.forwarded_at is not None for r in stored), "positions left unforwarded"
    gps = day.systems.gps
    with gps.lock:
        received = Counter(p["id"] for p in gps.positions)
    assert set(received) == {r.id for r in stored}
    assert max(received.values()) == 1


def calls_once(day: Day) -> None:
    crm = Counter(r.call_id for r in rows(day, "SELECT call_id FROM call_records "
                                               "WHERE source = 'cti'"))
    assert set(crm) == {c["call_id"] for c in day.record.calls}
    assert max(crm.values(), default=1) == 1


def all_hold(day: Day) -> None:
    every_payment_once(day)
    loan_balances_equal_the_source(day)
    promises_follow_the_payments(day)
    events_delivered_once_per_subscriber(day)
    only_the_poisoned_dead_letter(day)
    positions_forwarded_once(day)
    calls_once(day)
