"""Issue 19, findings 1 and 2: data the bank syncs change.

1. A product a source (W4 card, T24 loan, LOS application) gives another customer is a
   first-class change: PRODUCT_OWNER_CHANGED with the old and the new CIF, both customers' cases
   recomputed, promises and actions left with the customer they were made with (the case view
   says the account moved), both agents told, the run counting its moves — and a run that would
   move too many holds them for ops, who apply or reject them on the run page (audited).
2. Every sync and every payment leaves the cases it touched with the totals, products and
   priority a fresh recompute gives.

Against the sandbox twins over real HTTP (W4, LOS) and real T24 file sets, as the sync tests.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select

from integrations.sandbox._api import ServerThread
from integrations.sandbox.t24_files import SeedSource, generate_day
from integrations.sync import run_sync
from integrations.t24.load import load_set
from integrations.t24.manifest import verify
from portal import clock
from portal.cases.queue import recompute_case_totals, recompute_priorities
from portal.events.subscribers import deliver
from portal.models import AuditLog, Case, Notification, Payment
from tests.integration.sync_helpers import conn_fixture, events  # noqa: F401 - fixture

CUSTOMERS, PRODUCTS = 60, 90
BANK_DAY = date(2026, 11, 24)


def words(html: str) -> str:
    """The page's text as read: tags out (a CIF sits in its own translate="no" span)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_cards():
    from integrations.sandbox.w4_server import seed_cards

    return seed_cards(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)


def recompute_every_case(db) -> None:
    """Totals and priority of every case by the one definition (what the seed does)."""
    recompute_case_totals(db.session)
    recompute_priorities(db.session)
    db.session.commit()


@pytest.fixture
def bank(db, conn, tmp_path, bank_hours):
    """T24 day 0 loaded (customers and loans), one case per customer; the clock frozen in the
    bank's working hours (the sync and the fresh recompute share one "now")."""
    source = SeedSource(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)
    load_set(conn, verify(generate_day(tmp_path / "t24-day0", source)))
    conn.execute("INSERT INTO cases (cif) SELECT cif FROM customers")
    recompute_every_case(db)
    conn.execute("TRUNCATE events, integration_runs CASCADE")
    return conn


@pytest.fixture
def w4(app, seed_cards, monkeypatch):
    """The W4 twin serving ``server.records`` (change them, then ``reload(server)``)."""
    from integrations.sandbox.w4_server import DEFAULT_API_KEY, create_app

    records = [dict(c) for c in seed_cards]
    with ServerThread(create_app(lambda: records)) as server:
        server.records = records
        monkeypatch.setitem(app.config, "W4_API_URL", server.url)
        monkeypatch.setitem(app.config, "W4_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", 10)
        monkeypatch.setitem(app.config, "SYNC_HTTP_RETRIES", 1)
        yield server


@pytest.fixture
def los(app, monkeypatch):
    from integrations.sandbox.los_server import DEFAULT_TOKEN, create_app, seed_applications

    records = [dict(a) for a in seed_applications(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)]
    with ServerThread(create_app(lambda: records)) as server:
        server.records = records
        monkeypatch.setitem(app.config, "LOS_API_URL", server.url)
        monkeypatch.setitem(app.config, "LOS_API_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setitem(app.config, "SYNC_PAGE_SIZE", 10)
        monkeypatch.setitem(app.config, "SYNC_HTTP_RETRIES", 1)
        yield server


def reload(server) -> None:
    """The twin serves its (changed) records again."""
    assert requests.post(f"{server.url}/_sandbox/reset", timeout=5).ok


def stale_cases(db) -> dict[int, tuple]:
    """{case id: (stored, fresh)} of the cases whose total overdue, max DPD, outstanding,
    products or priority differ from a fresh recompute by the one definition
    (portal.cases.queue), computed in a savepoint that is rolled back."""
    db.session.rollback()

    def read():
        return {row[0]: tuple(row[1:]) for row in db.session.execute(
            select(Case.id, Case.total_overdue, Case.max_dpd, Case.total_outstanding,
                   Case.products, Case.priority))}

    stored = read()
    savepoint = db.session.begin_nested()
    recompute_case_totals(db.session)
    recompute_priorities(db.session, list(stored))
    fresh = read()
    savepoint.rollback()
    return {i: (stored[i], fresh[i]) for i in stored if stored[i] != fresh[i]}


def deliver_all(db, event_type: str, subscriber: str) -> None:
    from portal.models import Event

    for event in db.session.scalars(select(Event).where(Event.type == event_type)):
        assert deliver(db.session, event.id, subscriber) == "delivered"
    db.session.commit()


def overdue_card(records, conn, *, other_than: str | None = None) -> dict:
    """A card with days overdue whose customer holds no other product of ``records``."""
    owners = [r["client_cif"] for r in records]
    for record in records:
        if record["days_past_due"] and owners.count(record["client_cif"]) == 1 \
                and record["client_cif"] != other_than:
            return record
    raise AssertionError("the seed has no overdue card of a single-card customer")


def customer_without_products(conn, records) -> str:
    """A customer with no open loan and no card: moving a product to it changes its case."""
    owners = {r["client_cif"] for r in records}
    for (cif,) in conn.execute("SELECT cif FROM customers c WHERE NOT EXISTS (SELECT 1 FROM "
                               "loans l WHERE l.cif = c.cif AND l.status <> 'CLOSED') "
                               "ORDER BY cif"):
        if cif not in owners:
            return cif
    raise AssertionError("every customer of the seed holds a product")


def case_of(conn, cif: str) -> tuple:
    return conn.execute("SELECT total_overdue, max_dpd, total_outstanding, products, priority "
                        "FROM cases WHERE cif = %s", (cif,)).fetchone()


# -- finding 1: a product that changes owner -----------------------------------------------------


def test_a_card_w4_gives_another_customer_is_an_event_both_cases_recomputed_both_agents_told(
        app, db, bank, w4, make_user, make_action, client, login, login_as):
    conn = bank
    assert run_sync("W4", app=app, retries=0).status == "succeeded"
    card = overdue_card(w4.records, conn)
    old_cif, new_cif = card["client_cif"], customer_without_products(conn, w4.records)
    old_agent, new_agent = make_user("agent"), make_user("agent")
    conn.execute("UPDATE cases SET assigned_agent_id = %s WHERE cif = %s", (old_agent.id, old_cif))
    conn.execute("UPDATE cases SET assigned_agent_id = %s WHERE cif = %s", (new_agent.id, new_cif))
    from portal.models import Customer

    action = make_action(db.session.scalar(select(Customer).where(Customer.cif == old_cif)),
                         account_number=card["contract_number"], at=clock.now() - timedelta(1))
    assert case_of(conn, old_cif)[1] == card["days_past_due"] and case_of(conn, new_cif)[1] == 0

    card["client_cif"] = new_cif  # W4 now says the card belongs to another customer
    reload(w4)
    outcome = run_sync("W4", app=app, retries=0, full=True)

    assert outcome.status == "succeeded"
    assert outcome.summary["owner_moves"] == 1 and outcome.summary["owner_moves_held"] == 0
    assert conn.execute("SELECT cif FROM cards WHERE contract_number = %s",
                        (card["contract_number"],)).fetchone() == (new_cif,)
    [(_, key, payload)] = events(conn, "PRODUCT_OWNER_CHANGED")
    run_id = outcome.run_ids[-1]
    assert key == card["contract_number"]
    assert {k: payload[k] for k in ("product", "old_cif", "new_cif", "source_system",
                                    "integration_run_id", "held")} == {
        "product": "card", "old_cif": old_cif, "new_cif": new_cif, "source_system": "W4",
        "integration_run_id": run_id, "held": False}
    # both customers' cases by a fresh recompute: the card left one and joined the other
    assert stale_cases(db) == {}
    assert case_of(conn, old_cif)[1] == 0 and case_of(conn, new_cif)[1] == card["days_past_due"]
    assert "CARD" in case_of(conn, new_cif)[3]
    # the run counts it
    control = conn.execute("SELECT control_totals FROM integration_runs WHERE id = %s",
                           (run_id,)).fetchone()[0]
    assert control["owner_moves"] == 1 and control["owner_moves_held"] == 0
    login_as("ops")
    page = client.get(f"/ops/integrations/runs/{run_id}").get_data(as_text=True)
    assert 'data-testid="owner-moves"' in page and "1 applied" in page
    assert card["contract_number"] in page
    # both agents are told
    deliver_all(db, "PRODUCT_OWNER_CHANGED", "notifications.product_owner_changed")
    notices = {n.user_id: n for n in db.session.scalars(
        select(Notification).where(Notification.kind == "account_moved"))}
    assert set(notices) == {old_agent.id, new_agent.id}
    assert old_cif in notices[old_agent.id].body and new_cif in notices[old_agent.id].body
    assert notices[new_agent.id].link == f"/cases/{new_cif}"
    # the action stays with the customer it was made with, and says the account moved
    db.session.refresh(action)
    assert action.cif == old_cif
    login(old_agent)
    view = client.get(f"/cases/{old_cif}").get_data(as_text=True)
    assert f"moved to CIF {new_cif} on" in words(view) and 'data-testid="account-moved"' in view
    login(new_agent)
    moved_in = client.get(f"/cases/{new_cif}").get_data(as_text=True)
    assert f"moved from CIF {old_cif}" in words(moved_in)


def test_a_run_moving_more_than_the_share_holds_its_moves_for_ops_who_apply_or_reject_them(
        app, db, bank, w4, make_user, client, login_as, csrf_token, monkeypatch):
    from portal.models import ProductOwnerMove

    conn = bank
    assert run_sync("W4", app=app, retries=0).status == "succeeded"
    ops = make_user("ops")
    cards = [r for r in w4.records if r["days_past_due"]][:4]
    targets = customer_without_products(conn, w4.records)
    owners = {c["contract_number"]: c["client_cif"] for c in cards}
    for card in cards:  # 4 of the run's cards to one customer: far above 5%
        card["client_cif"] = targets
        card["days_past_due"] += 30  # the rest of the record still changes
    reload(w4)
    outcome = run_sync("W4", app=app, retries=0, full=True)

    assert outcome.status == "succeeded"
    assert outcome.summary["owner_moves"] == 0 and outcome.summary["owner_moves_held"] == 4
    stored = dict(conn.execute("SELECT contract_number, cif FROM cards WHERE contract_number "
                               "= ANY(%s)", (list(owners),)).fetchall())
    assert stored == owners  # held: the cards stay with their customers …
    dpd = dict(conn.execute("SELECT contract_number, days_overdue FROM cards WHERE "
                            "contract_number = ANY(%s)", (list(owners),)).fetchall())
    assert dpd == {c["contract_number"]: c["days_past_due"] for c in cards}  # … nothing lost
    assert events(conn, "PRODUCT_OWNER_CHANGED") == []
    assert stale_cases(db) == {}
    run_id = outcome.run_ids[-1]
    [notice] = db.session.scalars(select(Notification).where(Notification.user_id == ops.id))
    assert notice.kind == "owner_moves_held" and notice.link == f"/ops/integrations/runs/{run_id}"

    # the run page shows them with Apply / Reject; an agent may not decide
    login_as("agent")
    token = csrf_token("/")
    refused = client.post(f"/ops/integrations/runs/{run_id}/moves",
                          data={"csrf_token": token, "decision": "apply"})
    assert refused.status_code == 403
    login_as("ops")
    page = client.get(f"/ops/integrations/runs/{run_id}").get_data(as_text=True)
    assert page.count('data-testid="owner-move" data-status="held"') == 4
    assert 'data-testid="move-apply-all"' in page and "held for an ops decision" in page
    moves = db.session.scalars(select(ProductOwnerMove).where(ProductOwnerMove.run_id == run_id)
                               .order_by(ProductOwnerMove.id)).all()
    token = csrf_token(f"/ops/integrations/runs/{run_id}")
    done = client.post(f"/ops/integrations/runs/{run_id}/moves",
                       data={"csrf_token": token, "decision": "apply", "move": moves[0].id})
    assert done.status_code == 303
    done = client.post(f"/ops/integrations/runs/{run_id}/moves",
                       data={"csrf_token": token, "decision": "reject"})
    assert done.status_code == 303
    db.session.expire_all()
    assert [m.status for m in moves] == ["applied", "rejected", "rejected", "rejected"]
    assert all(m.decided_by_id for m in moves)
    stored = dict(conn.execute("SELECT contract_number, cif FROM cards WHERE contract_number "
                               "= ANY(%s)", (list(owners),)).fetchall())
    assert stored == {**owners, moves[0].product_key: targets}
    [(_, _, payload)] = events(conn, "PRODUCT_OWNER_CHANGED")
    assert payload["held"] is True and payload["decided_by_id"] and payload["move_id"] == \
        moves[0].id
    assert stale_cases(db) == {}  # applying recomputed both cases
    audited = db.session.scalars(select(AuditLog.action).where(
        AuditLog.action.like("sync.owner_moves.%")).order_by(AuditLog.id)).all()
    assert audited == ["sync.owner_moves.apply", "sync.owner_moves.reject"]

    # W4 proposes the rejected moves again (below the share now): held again, not applied
    monkeypatch.setitem(app.config, "SYNC_OWNER_MOVES_HOLD_SHARE", 0.9)
    for card in cards[1:]:
        card["credit_limit"] = str(Decimal(card["credit_limit"]) + 1)
    reload(w4)
    again = run_sync("W4", app=app, retries=0, full=True)
    assert again.summary["owner_moves_held"] == 3 and again.summary["owner_moves"] == 0


def test_a_loan_t24_gives_another_customer_moves_and_its_promise_stays_and_says_so(
        app, db, conn, tmp_path, bank_hours, make_user, client, login):
    day0 = SeedSource(CUSTOMERS, PRODUCTS, business_date=BANK_DAY)
    load_set(conn, verify(generate_day(tmp_path / "day0", day0)))
    conn.execute("INSERT INTO cases (cif) SELECT cif FROM customers")
    recompute_every_case(db)
    account, old_cif, due = conn.execute(
        "SELECT account_number, cif, due_amount FROM loans WHERE dpd > 0 AND status <> 'CLOSED' "
        "ORDER BY account_number LIMIT 1").fetchone()
    new_cif = conn.execute("SELECT cif FROM customers WHERE cif <> %s ORDER BY cif DESC LIMIT 1",
                           (old_cif,)).fetchone()[0]
    agent = make_user("agent")
    conn.execute("UPDATE cases SET assigned_agent_id = %s WHERE cif = %s", (agent.id, old_cif))
    conn.execute("INSERT INTO promises (cif, account_number, agent_id, amount, promised_date) "
                 "VALUES (%s, %s, %s, 1000000, %s)",
                 (old_cif, account, agent.id, clock.bank_today() + timedelta(days=3)))

    class Moved(SeedSource):
        def records(self):
            for entity, record in super().records():
                if entity == "loans" and record["account_number"] == account:
                    record = {**record, "cif": new_cif}
                yield entity, record

    moved = Moved(CUSTOMERS, PRODUCTS, business_date=BANK_DAY + timedelta(days=1))
    result = load_set(conn, verify(generate_day(tmp_path / "day1", moved)))

    assert result.status == "succeeded" and result.owner_moves == {
        "owner_moves": 1, "owner_moves_held": 0}
    assert conn.execute("SELECT cif FROM loans WHERE account_number = %s",
                        (account,)).fetchone() == (new_cif,)
    [(_, key, payload)] = events(conn, "PRODUCT_OWNER_CHANGED")
    assert (key, payload["product"], payload["old_cif"], payload["new_cif"],
            payload["source_system"]) == (account, "loan", old_cif, new_cif, "T24")
    assert stale_cases(db) == {}
    assert conn.execute("SELECT cif FROM promises WHERE account_number = %s",
                        (account,)).fetchone() == (old_cif,)  # the promise stays
    login(agent)
    view = client.get(f"/cases/{old_cif}").get_data(as_text=True)
    assert f"moved to CIF {new_cif} on" in words(view) and 'data-testid="account-moved"' in view
    assert due > 0


def test_an_application_los_gives_another_customer_is_a_move(app, db, bank, los):
    conn = bank
    assert run_sync("LOS", app=app, retries=0).status == "succeeded"
    record = los.records[0]
    old_cif = record["customer_cif"]
    new_cif = conn.execute("SELECT cif FROM customers WHERE cif <> %s ORDER BY cif LIMIT 1",
                           (old_cif,)).fetchone()[0]
    record["customer_cif"] = new_cif
    reload(los)
    outcome = run_sync("LOS", app=app, retries=0, full=True)
    assert outcome.summary["owner_moves"] == 1
    assert conn.execute("SELECT cif FROM loan_applications WHERE application_id = %s",
                        (record["application_id"],)).fetchone() == (new_cif,)
    [(_, key, payload)] = events(conn, "PRODUCT_OWNER_CHANGED")
    assert (key, payload["product"], payload["old_cif"], payload["new_cif"]) == (
        record["application_id"], "application", old_cif, new_cif)


# -- finding 2: totals and priority after every sync and every payment ---------------------------


def test_after_a_w4_sync_changing_dpd_and_overdue_every_case_equals_a_fresh_recompute(
        app, db, bank, w4):
    conn = bank
    assert run_sync("W4", app=app, retries=0).status == "succeeded"
    assert stale_cases(db) == {}
    touched = requests.post(f"{w4.url}/_sandbox/touch", json={"count": 12},
                            timeout=5).json()["touched"]
    before = {c: case_of(conn, cif) for c, cif in conn.execute(
        "SELECT contract_number, cif FROM cards WHERE contract_number = ANY(%s)", (touched,))}
    assert run_sync("W4", app=app, retries=0).summary["extracted"] == 12
    after = {c: case_of(conn, cif) for c, cif in conn.execute(
        "SELECT contract_number, cif FROM cards WHERE contract_number = ANY(%s)", (touched,))}
    assert before != after  # the DPD and overdue of those customers changed …
    assert stale_cases(db) == {}  # … and their totals and priority are the fresh ones


def test_after_a_payment_the_case_of_the_loans_owner_equals_a_fresh_recompute(
        app, db, bank_hours, make_customer, make_loan, make_case, make_payment):
    from portal.payments.effects import sync_payment

    payer, owner = make_customer(), make_customer()
    loan = make_loan(payer, dpd=40, due_amount=Decimal("6000000"))
    make_loan(owner, dpd=10, due_amount=Decimal("1000000"))
    make_case(payer), make_case(owner)
    payment = make_payment(loan, "2500000", status="received")
    recompute_every_case(db)
    assert stale_cases(db) == {}
    # a bank sync gave the loan to another customer before the payment's effects ran
    loan.cif = owner.cif
    db.session.commit()
    recompute_every_case(db)

    sync_payment(db.session, payment.id)
    db.session.commit()

    assert db.session.get(Payment, payment.id).applied_amount == Decimal("2500000")
    assert stale_cases(db) == {}  # the payer's case and the loan owner's case
    owner_case = db.session.scalar(select(Case).where(Case.cif == owner.cif))
    assert owner_case.total_overdue == Decimal("4500000")
