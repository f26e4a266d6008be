"""reference persons entered and retired from the case view

A reference person an agent retires keeps its row, its contacts and its history: the row is
marked retired (when, by whom) and hidden from the case view's list.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 04:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("reference_customers",
                  sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("reference_customers",
                  sa.Column("retired_by_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("fk_reference_customers_retired_by_id_users"),
                          "reference_customers", "users", ["retired_by_id"], ["id"],
                          ondelete="SET NULL")


def downgrade():
    op.drop_constraint(op.f("fk_reference_customers_retired_by_id_users"),
                       "reference_customers", type_="foreignkey")
    op.drop_column("reference_customers", "retired_by_id")
    op.drop_column("reference_customers", "retired_at")
