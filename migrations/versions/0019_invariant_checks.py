"""the results of flask check invariants

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 20:00:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
from sqlalchemy.dialects import postgresql

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "invariant_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("crm_now()")),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("triggered_by_id", sa.Integer(),
                  sa.ForeignKey("users.id", name="fk_invariant_runs_triggered_by_id_users",
                                ondelete="SET NULL")),
        sa.Column("violations", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("results", postgresql.JSONB(), nullable=False, server_default="[]"),
    )
    op.create_index("ix_invariant_runs_started_at", "invariant_runs", ["started_at"])


def downgrade():
    op.drop_index("ix_invariant_runs_started_at", table_name="invariant_runs")
    op.drop_table("invariant_runs")
