"""camt.053/054 imports and their transaction outcomes

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 22:30:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
from sqlalchemy.dialects import postgresql

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 2)


def upgrade():
    op.create_table(
        "camt_imports",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("imported_by_id", sa.Integer(),
                  sa.ForeignKey("users.id", name="fk_camt_imports_imported_by_id_users",
                                ondelete="SET NULL")),
        sa.Column("filename", sa.String(255)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.String(40)),
        sa.Column("message_id", sa.String(64)),
        sa.Column("repeat_of_id", sa.BigInteger(),
                  sa.ForeignKey("camt_imports.id",
                                name="fk_camt_imports_repeat_of_id_camt_imports",
                                ondelete="SET NULL")),
        sa.Column("controls_ok", sa.Boolean(), nullable=False),
        sa.Column("checks", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("transactions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("accepted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("duplicates", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("refused", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("accepted_total", MONEY, nullable=False, server_default="0"),
        sa.CheckConstraint("source IN ('cli', 'upload')", name="ck_camt_imports_source"),
    )
    op.create_index("ix_camt_imports_imported_at", "camt_imports", ["imported_at"])
    op.create_index("ix_camt_imports_sha256", "camt_imports", ["sha256"])
    op.create_table(
        "camt_import_transactions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("import_id", sa.BigInteger(),
                  sa.ForeignKey("camt_imports.id",
                                name="fk_camt_import_transactions_import_id_camt_imports",
                                ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(32), nullable=False),
        sa.Column("report_id", sa.String(64)),
        sa.Column("entry_reference", sa.String(64)),
        sa.Column("reference", sa.String(64)),
        sa.Column("end_to_end_id", sa.String(64)),
        sa.Column("amount", MONEY),
        sa.Column("currency", sa.String(8)),
        sa.Column("credit", sa.Boolean()),
        sa.Column("reversal", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("booked_at", sa.DateTime(timezone=True)),
        sa.Column("account_number", sa.String(64)),
        sa.Column("matched_by", sa.String(32)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("message", sa.Text()),
        sa.Column("payment_id", sa.BigInteger(),
                  sa.ForeignKey("payments.id",
                                name="fk_camt_import_transactions_payment_id_payments",
                                ondelete="SET NULL")),
        sa.Column("rejection_id", sa.BigInteger(),
                  sa.ForeignKey("rejected_notifications.id",
                                name="fk_camt_import_transactions_rejection_id_"
                                     "rejected_notifications",
                                ondelete="SET NULL")),
        sa.CheckConstraint("outcome IN ('accepted', 'duplicate', 'refused', 'skipped')",
                           name="ck_camt_import_transactions_outcome"),
    )
    op.create_index("ix_camt_import_transactions_import_position", "camt_import_transactions",
                    ["import_id", "position"], unique=True)


def downgrade():
    op.drop_index("ix_camt_import_transactions_import_position",
                  table_name="camt_import_transactions")
    op.drop_table("camt_import_transactions")
    op.drop_index("ix_camt_imports_sha256", table_name="camt_imports")
    op.drop_index("ix_camt_imports_imported_at", table_name="camt_imports")
    op.drop_table("camt_imports")
