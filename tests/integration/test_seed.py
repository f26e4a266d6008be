"""`flask seed-demo`: a small demo data set is complete, consistent and seeded only once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from werkzeug.security import check_password_hash

from portal import clock
from portal.models.enums import (
    ACTION_TYPES,
    BUCKET_NAMES,
    INTEGRATIONS,
    PROMISE_STATUSES,
    bucket_for_dpd,
)
from portal.seed.action_codes import DEFAULT_ACTION_CODES
from portal.seed.activity import RESULT_WEIGHTS
from portal.seed.demo import FIELD_AREAS
from portal.seed.geo import CITIES
from tests.database import SEEDED_TABLES

SMALL = ["seed-demo", "--customers", "200", "--loans", "300"]
DEMO_USERS = {"admin", "ops", "auditor", "sup1", "sup2", "sup3",
              *(f"agent{n:02d}" for n in range(1, 19)), *(f"field{n:02d}" for n in range(1, 8))}
# (lat, lon) boxes of ~15 km around each city centre
CITY_BOXES = {"HCM": ((10.64, 10.92), (106.56, 106.84)), "HN": ((20.89, 21.17), (105.71, 105.99))}


def scalar(db, sql: str, **params):
    return db.session.execute(text(sql), params).scalar()


def rows(db, sql: str, **params):
    return db.session.execute(text(sql), params).all()


def table_counts(db) -> dict[str, int]:
    return {t.name: scalar(db, f'SELECT count(*) FROM "{t.name}"')
            for t in db.metadata.sorted_tables}


@pytest.fixture
def seed(app, db):
    runner = app.test_cli_runner()

    def run(args=SMALL):
        result = runner.invoke(args=args)
        db.session.rollback()  # see what the seed committed
        return result

    return run


@pytest.fixture
def seeded(seed):
    result = seed()
    assert result.exit_code == 0, result.output
    return result


# -- the catalogue and the geography, without a database -----------------------------------------
def test_action_code_catalogue_is_complete():
    keys = {(c.type, c.subtype, c.result) for c in DEFAULT_ACTION_CODES}
    assert len(keys) == len(DEFAULT_ACTION_CODES), "duplicate action codes"
    assert {c.type for c in DEFAULT_ACTION_CODES} == set(ACTION_TYPES)
    for kind in ("CALL", "VISIT"):
        assert any(c.is_promise for c in DEFAULT_ACTION_CODES if c.type == kind)
    assert all(c.is_contact for c in DEFAULT_ACTION_CODES if c.is_promise)
    assert all(c.follow_up_days is None or c.follow_up_days >= 0 for c in DEFAULT_ACTION_CODES)
    for (kind, subtype), weights in RESULT_WEIGHTS.items():
        for result in weights:
            assert (kind, subtype, result) in keys, (kind, subtype, result)
    assert ("CALL", "OUTBOUND", "WRONG_NUMBER") in keys
    assert ("VISIT", "HOME", "MOVED") in keys


def test_field_agents_cover_every_district():
    covered = [d for _, _, _, districts in FIELD_AREAS for d in districts]
    assert sorted(covered) == sorted(d.name for city in CITIES for d in city.districts)


# -- the seeded data -------------------------------------------------------------------------------
def test_seed_counts_and_progress(db, seeded):
    assert "customers 200/200" in seeded.output
    assert scalar(db, "SELECT count(*) FROM customers") == 200
    assert scalar(db, "SELECT count(*) FROM loans") + scalar(db, "SELECT count(*) FROM cards") \
        == 300
    assert scalar(db, "SELECT count(*) FROM customers WHERE type = 'ORGANIZATION' "
                      "AND company_name IS NOT NULL AND tax_id IS NOT NULL") > 0
    for table in ("reference_customers", "collaterals", "loan_collaterals", "loan_applications",
                  "loan_bucket_history", "cases", "case_assignments", "actions", "call_records",
                  "promises", "payments", "promise_allocations", "visits", "agent_status",
                  "emails"):
        assert scalar(db, f"SELECT count(*) FROM {table}") > 0, table
    assert scalar(db, "SELECT count(*) FROM loan_applications WHERE account_number IS NOT NULL "
                      "AND account_number IN (SELECT account_number FROM loans)") > 0


def test_phones_are_vietnamese_and_e164(db, seeded):
    phones = rows(db, "SELECT number, number_e164, type, cif, ref_cif FROM phones")
    assert scalar(db, "SELECT count(*) FROM customers c WHERE NOT EXISTS "
                      "(SELECT 1 FROM phones p WHERE p.cif = c.cif AND p.is_primary)") == 0
    assert any(ref_cif for *_, ref_cif in phones), "reference persons have phones"
    for number, e164, kind, _, _ in phones:
        assert number.startswith("0") and number.isdigit()
        assert e164 == "+84" + number[1:]
        if kind == "MOBILE":
            assert len(number) == 10
    mobiles = [e164 for _, e164, kind, _, _ in phones if kind == "MOBILE"]
    assert len(set(mobiles)) == len(mobiles)


def test_every_bucket_and_bucket_matches_dpd(db, seeded):
    loans = rows(db, "SELECT dpd, bucket, original_amount, outstanding, due_amount FROM loans")
    cards = rows(db, "SELECT days_overdue, bucket FROM cards")
    for dpd, bucket, *amounts in loans:
        assert bucket == bucket_for_dpd(dpd)
        assert all(isinstance(a, Decimal) and a >= 0 for a in amounts)
    for dpd, bucket in cards:
        assert bucket == bucket_for_dpd(dpd)
    assert {b for _, b, *_ in loans} == set(BUCKET_NAMES)
    assert {b for _, b in cards} == set(BUCKET_NAMES)
    # each loan has one current stay in its bucket history, in the loan's bucket
    mismatched = scalar(db, """
        SELECT count(*) FROM loans l LEFT JOIN loan_bucket_history h
          ON h.account_number = l.account_number AND h.to_date IS NULL
        WHERE l.status <> 'CLOSED' AND (h.bucket IS NULL OR h.bucket <> l.bucket)""")
    assert mismatched == 0


def test_staff_teams_and_demo_logins(db, seeded):
    users = {u.username: u for u in rows(db, "SELECT * FROM users")}
    assert set(users) == DEMO_USERS
    assert users["admin"].role == "admin" and users["ops"].role == "ops"
    assert users["auditor"].role == "auditor" and users["auditor"].team_id is None
    agents = [u for u in users.values() if u.role in ("agent", "field_agent")]
    assert len(agents) == 25
    teams = rows(db, "SELECT id, supervisor_id FROM teams")
    assert len(teams) == 3
    for team_id, supervisor_id in teams:
        supervisor = next(u for u in users.values() if u.id == supervisor_id)
        assert supervisor.role == "supervisor" and supervisor.team_id == team_id
        members = [u for u in agents if u.team_id == team_id]
        assert len([u for u in members if u.role == "agent"]) == 6
        assert any(u.role == "field_agent" for u in members)
    assert all(u.password_hash.startswith("scrypt:") for u in users.values())
    for password_hash in {u.password_hash for u in users.values()}:  # scrypt is slow: once each
        assert check_password_hash(password_hash, "Demo@2026")
        assert not check_password_hash(password_hash, "wrong")
    for user in agents:
        if user.role == "agent":
            assert user.phone_extension and user.cti_agent_id
        else:
            assert user.region
    assert scalar(db, "SELECT count(*) FROM agent_status") == 25


def test_demo_password_comes_from_the_environment(db, seed, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "Kh@c-2026")
    assert seed(["seed-demo", "--customers", "20", "--loans", "30"]).exit_code == 0
    password_hash = scalar(db, "SELECT password_hash FROM users WHERE username = 'agent01'")
    assert check_password_hash(password_hash, "Kh@c-2026")
    assert not check_password_hash(password_hash, "Demo@2026")


def test_promises_agree_with_their_payments(db, seeded):
    promises = rows(db, """
        SELECT p.id, p.status, p.amount, p.paid_amount, p.resolved_at, p.account_number,
               coalesce(sum(a.amount), 0) AS allocated
        FROM promises p LEFT JOIN promise_allocations a ON a.promise_id = p.id
        GROUP BY p.id""")
    # the demo takes a new promise only once the last one is settled: none is superseded; an
    # open promise part paid (partially kept) is too rare to count on in the small demo
    assert {p.status for p in promises} >= set(PROMISE_STATUSES) - {
        "cancelled", "superseded", "partially_kept"}
    for p in promises:
        assert p.allocated == p.paid_amount, p
        if p.status == "kept":
            assert p.paid_amount >= p.amount and p.resolved_at is not None
        elif p.status == "partially_kept":  # still open, part paid
            assert 0 < p.paid_amount < p.amount and p.resolved_at is None
        elif p.status == "broken":  # its date passed, paid short (or not at all)
            assert p.paid_amount < p.amount and p.resolved_at is not None
        elif p.status == "pending":
            assert p.paid_amount == 0 and p.resolved_at is None
        if p.paid_amount:
            assert p.account_number is not None
    # an allocation never exceeds its payment, and both belong to the same loan
    assert scalar(db, """
        SELECT count(*) FROM promise_allocations a JOIN payments y ON y.id = a.payment_id
        JOIN promises p ON p.id = a.promise_id
        WHERE a.amount > y.amount OR y.account_number <> p.account_number
           OR a.allocated_at < y.paid_at""") == 0
    assert rows(db, "SELECT DISTINCT status, source FROM payments") == [("received", "webhook")]
    # kept promises are paid on or before the promised date (bank time)
    assert scalar(db, """
        SELECT count(*) FROM promises p JOIN promise_allocations a ON a.promise_id = p.id
        JOIN payments y ON y.id = a.payment_id
        WHERE p.status = 'kept'
          AND (y.paid_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date > p.promised_date""") == 0


def test_cases_belong_to_delinquent_customers(db, seeded):
    delinquent = {r.cif for r in rows(db, """
        SELECT cif FROM loans WHERE dpd > 0 AND status <> 'CLOSED'
        UNION SELECT cif FROM cards WHERE days_overdue > 0 AND status <> 'CLOSED'""")}
    cases = rows(db, """
        SELECT c.*, a.role AS agent_role, f.role AS field_role,
          greatest((SELECT max(dpd) FROM loans l WHERE l.cif = c.cif AND l.status <> 'CLOSED'),
                   (SELECT max(days_overdue) FROM cards k
                    WHERE k.cif = c.cif AND k.status <> 'CLOSED')) AS product_dpd
        FROM cases c JOIN users a ON a.id = c.assigned_agent_id
        LEFT JOIN users f ON f.id = c.assigned_field_agent_id""")
    assert {c.cif for c in cases} == delinquent
    assert any(c.assigned_field_agent_id for c in cases)
    now = clock.now()
    for case in cases:
        assert case.agent_role == "agent"
        assert case.field_role in (None, "field_agent")
        assert case.max_dpd == case.product_dpd > 0
        assert case.total_overdue > 0 and case.total_outstanding >= 0
        assert case.next_action_at is not None
        assert case.last_contact_at is None or case.last_contact_at <= now
    # the current assignment is in the history
    assert scalar(db, """
        SELECT count(*) FROM cases c WHERE NOT EXISTS (
          SELECT 1 FROM case_assignments a WHERE a.case_id = c.id AND a.role = 'agent'
            AND a.agent_id = c.assigned_agent_id AND a.unassigned_at IS NULL)""") == 0
    # a promised case has an open promise: pending, or part paid before its date
    assert scalar(db, "SELECT count(*) FROM cases WHERE status = 'promised' AND NOT EXISTS "
                      "(SELECT 1 FROM promises p WHERE p.cif = cases.cif "
                      "AND p.status IN ('pending', 'partially_kept'))") == 0


def test_history_is_recent_and_uses_action_codes(db, seeded):
    now = clock.now()
    first, last = rows(db, "SELECT min(at), max(at) FROM actions")[0]
    assert first >= now - timedelta(days=32) and last <= now
    assert scalar(db, """
        SELECT count(*) FROM actions a JOIN action_codes c ON c.id = a.action_code_id
        WHERE (a.type, a.subtype, a.result) <> (c.type, c.subtype, c.result)""") == 0
    assert scalar(db, "SELECT count(*) FROM actions WHERE action_code_id IS NULL") == 0
    assert scalar(db, "SELECT count(*) FROM actions a LEFT JOIN call_records r "
                      "ON r.call_id = a.call_id WHERE a.type = 'CALL' AND r.id IS NULL") == 0
    assert {r[0] for r in rows(db, "SELECT DISTINCT type FROM actions")} >= {"CALL", "SMS"}
    assert scalar(db, "SELECT count(*) FROM action_codes") == len(DEFAULT_ACTION_CODES)


def test_addresses_and_visits_are_in_the_two_cities(db, seeded):
    points = rows(db, "SELECT lat, lon FROM addresses")
    assert all(lat is not None and lon is not None for lat, lon in points)
    per_city = dict.fromkeys(CITY_BOXES, 0)
    for lat, lon in points:
        inside = [code for code, ((la, lb), (oa, ob)) in CITY_BOXES.items()
                  if la <= lat <= lb and oa <= lon <= ob]
        assert inside, (lat, lon)
        per_city[inside[0]] += 1
    assert all(per_city.values()), per_city
    visits = rows(db, """
        SELECT v.verification, v.distance_m, v.checkin_lat, v.checkin_lon, a.lat, a.lon
        FROM visits v JOIN addresses a ON a.id = v.address_id
        WHERE v.checked_in_at IS NOT NULL""")
    assert visits
    for verification, distance, *_ in visits:
        if verification == "verified":
            assert distance <= 200


def test_integration_settings_enabled(db, seeded):
    settings = dict(rows(db, "SELECT integration, enabled FROM integration_settings"))
    assert settings == dict.fromkeys(INTEGRATIONS, True)


def test_the_legal_team_and_two_agencies_take_placements(db, seeded):
    rows = db.session.execute(text("SELECT kind, count(*) FROM agencies WHERE active "
                                   "GROUP BY kind ORDER BY kind")).all()
    assert [tuple(r) for r in rows] == [("agency", 2), ("legal", 1)]


def test_second_run_changes_nothing(db, seed, seeded):
    before = table_counts(db)
    again = seed()
    assert again.exit_code == 0, again.output
    assert "already seeded" in again.output
    assert table_counts(db) == before


def test_same_data_every_time(db, seed, seeded):
    def snapshot():
        return (rows(db, "SELECT cif, name, national_id FROM customers ORDER BY cif"),
                rows(db, "SELECT account_number, cif, dpd, outstanding FROM loans "
                         "ORDER BY account_number"),
                rows(db, "SELECT number FROM phones ORDER BY id"))

    first = snapshot()
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables
                       if t.name not in SEEDED_TABLES)  # the migrations' rows stay
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()
    assert seed().exit_code == 0
    assert snapshot() == first


def test_refuses_a_database_with_customers(db, seed, make_customer):
    make_customer()
    result = seed()
    assert result.exit_code != 0
    assert "already holds customers" in result.output
    assert scalar(db, "SELECT count(*) FROM users") == 0


def test_seed_with_foreign_key_triggers_on(db, seed, monkeypatch):
    """A role that may not switch triggers off gets the same data, checked row by row."""
    from portal.seed.bulk import BulkWriter

    monkeypatch.setattr(BulkWriter, "disable_fk_triggers", lambda self: False)
    result = seed(["seed-demo", "--customers", "60", "--loans", "90"])
    assert result.exit_code == 0, result.output
    assert "foreign keys verified" not in result.output
    assert scalar(db, "SELECT count(*) FROM customers") == 60


def test_foreign_key_check_finds_orphans(db):
    from portal.seed.bulk import BulkWriter

    with db.engine.raw_connection() as raw:
        conn = raw.driver_connection
        try:
            writer = BulkWriter(conn)
            assert writer.disable_fk_triggers()
            writer.copy("phones", ("id", "cif", "type", "number"), [(1, "NO-SUCH-CIF", "MOBILE",
                                                                     "0912345678")])
            with pytest.raises(RuntimeError, match="phones break foreign key"):
                writer.verify_foreign_keys(db.metadata)
        finally:
            writer.close()
            conn.rollback()


def test_the_demo_has_message_templates_in_both_languages(db, seeded):
    from portal.messages.rendering import unknown_variables

    found = rows(db, "SELECT code, channel, subject_vi, subject_en, body_vi, body_en "
                     "FROM message_templates WHERE active ORDER BY code")
    assert {r.channel for r in found} == {"sms", "email", "letter"}
    for row in found:
        assert row.body_vi != row.body_en
        for text_ in (row.subject_vi, row.subject_en, row.body_vi, row.body_en):
            assert unknown_variables(text_) == [], row.code
        assert (row.subject_vi is None) == (row.channel == "sms")


def test_the_sandbox_twins_serve_the_customers_and_products_seeded_here(db, seeded):
    """`make run` seeds the demo and starts the twins over the same portfolio
    (integrations/sandbox/t24_files.SeedSource): a customer refreshed from T24, W4 or LOS
    is the customer on the screen, not another drawn from a shifted stream."""
    from integrations.sandbox.t24_files import SeedSource

    twins = SeedSource(200, 300)
    customers = {r["cif"]: (r["name"], r["national_id"])
                 for _, r in twins.table_rows(("customers",))}
    assert dict((cif, (name, nid)) for cif, name, nid in rows(
        db, "SELECT cif, name, national_id FROM customers")) == customers
    cards = {r["contract_number"]: r["cif"] for _, r in twins.table_rows(("cards",))}
    assert dict(rows(db, "SELECT contract_number, cif FROM cards")) == cards
    loans = {r["account_number"]: r["cif"] for _, r in twins.table_rows(("loans",))}
    assert dict(rows(db, "SELECT account_number, cif FROM loans")) == loans
