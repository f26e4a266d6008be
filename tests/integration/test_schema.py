"""The migration chain builds exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect


def test_migrations_match_models(db):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations disagree (run `flask db migrate`): {diff}"


def test_protective_constraints_exist(db):
    inspector = inspect(db.engine)
    uniques = {
        table: {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        for table in ("customers", "loans", "payments", "call_records")
    }
    assert ("cif",) in uniques["customers"]
    assert ("account_number",) in uniques["loans"]
    assert ("reference_number",) in uniques["payments"]
    assert ("call_id",) in uniques["call_records"]
    checks = {c["name"] for c in inspector.get_check_constraints("payments")}
    assert "ck_payments_amount_positive" in checks
