"""workspace: search indexes and queue performance

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 04:45:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
from sqlalchemy.dialects import postgresql  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


# Accent-folding for Vietnamese names, as an IMMUTABLE function so an index can hold it.
# The same letters as portal.cases.queue.fold (the Python twin).
_VIET = "àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễìíịỉĩòóọỏõôồốộổỗơờớợởỡùúụủũưừứựửữỳýỵỷỹđ"
_PLAIN = "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd"

# Trigram indexes back "contains" searches (folded name, phone digits); they are expression /
# GIN indexes, so they live here and not on the models (autogenerate skips them). A CIF prefix
# uses a btree in pattern order (a trigram index on cif would be picked for joins on cif, at
# ten times the cost of the unique btree).
_TRGM_INDEXES = (
    ("ix_customers_name_fold_trgm", "customers", "crm_fold(name)"),
    ("ix_phones_number_trgm", "phones", "number"),
    ("ix_phones_number_e164_trgm", "phones", "number_e164"),
)


def upgrade():
    op.add_column("cases", sa.Column("products", postgresql.ARRAY(sa.String(length=32)),
                                     server_default="{}", nullable=False))
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        "CREATE OR REPLACE FUNCTION crm_fold(value text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS "
        f"$$ SELECT translate(lower(value), '{_VIET}', '{_PLAIN}') $$"
    )
    for name, table, expression in _TRGM_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} USING gin ({expression} gin_trgm_ops)")
    op.execute("CREATE INDEX ix_customers_cif_prefix ON customers (cif varchar_pattern_ops)")
    # the work queue: an agent's open cases in priority order, read from the index in order
    op.create_index(
        "ix_cases_open_queue", "cases",
        ["assigned_agent_id", sa.text("priority DESC"), sa.text("max_dpd DESC"),
         sa.text("total_overdue DESC"), "id"],
        postgresql_where=sa.text("status <> 'closed'"),
        postgresql_include=["status", "next_action_at", "cif", "products"],
    )
    # cases are rewritten all day (priorities hourly, totals on every sync and payment): vacuum
    # them early so their pages stay all-visible and the queue counts stay index-only scans
    op.execute("ALTER TABLE cases SET (autovacuum_vacuum_scale_factor = 0.02, "
               "autovacuum_analyze_scale_factor = 0.02)")
    # due promises by customer, read from the index alone (the queue's "promise due" count)
    op.drop_index("ix_promises_due", table_name="promises")
    op.create_index("ix_promises_due", "promises", ["status", "promised_date"],
                    postgresql_include=["cif"])
    # fill cases.products from the products still in collection (as recompute_case_totals does)
    op.execute("""
        UPDATE cases SET products = p.products
        FROM (SELECT cif, array_agg(DISTINCT product ORDER BY product) AS products
              FROM (SELECT cif, product_type AS product FROM loans WHERE status <> 'CLOSED'
                    UNION ALL
                    SELECT cif, 'CARD' FROM cards WHERE status <> 'CLOSED') AS x
              GROUP BY cif) AS p
        WHERE p.cif = cases.cif""")


def downgrade():
    op.drop_index("ix_promises_due", table_name="promises")
    op.create_index("ix_promises_due", "promises", ["status", "promised_date"])
    op.drop_index("ix_cases_open_queue", table_name="cases")
    op.execute("ALTER TABLE cases RESET (autovacuum_vacuum_scale_factor, "
               "autovacuum_analyze_scale_factor)")
    op.execute("DROP INDEX IF EXISTS ix_customers_cif_prefix")
    for name, _, _ in _TRGM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP FUNCTION IF EXISTS crm_fold(text)")
    op.drop_column("cases", "products")
