"""Shared by the bank-sync integration tests: a psycopg connection, snapshots of the bank data,
the events published, and a check of every payload against the event catalog."""

from __future__ import annotations

import psycopg
import pytest

from portal.events.catalog import validate_payload

BANK_TABLES = ("customers, reference_customers, loans, collaterals, loan_collaterals, phones, "
               "addresses, emails, loan_bucket_history, cards, loan_applications")
SNAPSHOTS = {
    "customers": ("cif", "SELECT cif, type, name, date_of_birth, national_id, gender, "
                         "company_name, registration_number, tax_id, segment, status "
                         "FROM customers"),
    "loans": ("account_number", "SELECT account_number, cif, product_type, currency, "
                                "original_amount, outstanding, due_amount, min_pay, "
                                "next_payment_date, dpd, bucket, status, disbursement_date, "
                                "maturity_date, close_date, interest_rate, term FROM loans"),
    "collaterals": ("collateral_number", "SELECT collateral_number, cif, type, description, "
                                         "value, currency, valuation_date FROM collaterals"),
    "references": ("ref_cif", "SELECT ref_cif, primary_cif, relationship_type, name, "
                              "national_id, gender FROM reference_customers"),
    "phones": ("owner", "SELECT coalesce(cif, ref_cif) AS owner, number, type, is_primary, "
                        "is_verified, do_not_contact, source_system FROM phones"),
    "addresses": ("owner", "SELECT coalesce(cif, ref_cif) AS owner, type, line1, line2, ward, "
                           "district, city, country, lat, lon, is_primary FROM addresses"),
    "cards": ("contract_number", "SELECT contract_number, cif, masked_card_number, outstanding, "
                                 "min_due, days_overdue, bucket, status, w4_case_id, "
                                 "w4_case_status FROM cards"),
    "applications": ("application_id", "SELECT application_id, cif, account_number, product, "
                                        "status, decision_date, disbursement_date, employer "
                                        "FROM loan_applications"),
}


def pg_url(app) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(name="conn")
def conn_fixture(app, db):
    """An autocommit psycopg connection to the test database (tables emptied after the test)."""
    with psycopg.connect(pg_url(app), autocommit=True) as connection:
        yield connection


def snapshot(conn) -> dict[str, dict[str, set]]:
    """{table: {owner key: set of row tuples}} — comparable before/after a load."""
    state = {}
    for name, (_, query) in SNAPSHOTS.items():
        rows: dict[str, set] = {}
        for row in conn.execute(query):
            rows.setdefault(str(row[0]), set()).add(tuple(row))
        state[name] = rows
    return state


def changed_keys(before: dict, after: dict, table: str) -> set[str]:
    old, new = before[table], after[table]
    return {k for k in set(old) | set(new) if old.get(k) != new.get(k)}


def events(conn, *types: str) -> list[tuple[str, str, dict]]:
    """(type, aggregate_id, payload) of the outbox, every payload checked by the catalog."""
    query = "SELECT type, aggregate_id, payload FROM events"
    rows = conn.execute(query + (" WHERE type = ANY(%s)" if types else "") + " ORDER BY seq",
                        (list(types),) if types else ()).fetchall()
    for event_type, _, payload in rows:
        validate_payload(event_type, payload)
    return rows


def count(conn, table: str, where: str = "") -> int:
    return conn.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0]  # noqa: S608


def truncate_bank_data(conn) -> None:
    conn.execute(f"TRUNCATE {BANK_TABLES}, events, integration_runs, quarantined_records, "
                 "integration_settings CASCADE")
