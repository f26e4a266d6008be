"""The migration chain builds exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from portal.models.base import MIGRATION_MANAGED_INDEXES, include_object


def test_migrations_match_models(db):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object})
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


def test_search_indexes_exist_and_back_the_search(db):
    """The migration-managed trigram indexes are there (the schema diff skips them)."""
    inspector = inspect(db.engine)
    names = {i["name"] for t in ("customers", "phones") for i in inspector.get_indexes(t)}
    assert names >= MIGRATION_MANAGED_INDEXES
    folded = db.session.execute(text("SELECT crm_fold('Nguyễn Văn Đức')")).scalar()
    assert folded == "nguyen van duc"


def test_the_sql_fold_function_folds_exactly_like_python(db):
    from portal.cases.search import _VIET, fold

    letters = _VIET + _VIET.upper() + "abc XYZ 123"
    assert db.session.execute(text("SELECT crm_fold(:v)"), {"v": letters}).scalar() \
        == fold(letters)
