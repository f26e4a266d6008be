"""payment plans (arrangements): plans, their instalments, and the payments allocated to them

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 04:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 2)
NOW = sa.text("crm_now()")


def upgrade():
    op.create_table(
        "payment_plans",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cif", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="VND", nullable=False),
        sa.Column("overdue_at_start", MONEY, nullable=False),
        sa.Column("break_after_missed", sa.Integer(), server_default="1", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by_id", sa.Integer(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("status IN ('active', 'completed', 'broken', 'cancelled')",
                           name=op.f("ck_payment_plans_status")),
        sa.CheckConstraint("total > 0", name=op.f("ck_payment_plans_total_positive")),
        sa.CheckConstraint("break_after_missed >= 1",
                           name=op.f("ck_payment_plans_break_after_positive")),
        sa.ForeignKeyConstraint(["cif"], ["customers.cif"], onupdate="CASCADE",
                                name=op.f("fk_payment_plans_cif_customers")),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_payment_plans_agent_id_users")),
        sa.ForeignKeyConstraint(["cancelled_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_payment_plans_cancelled_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_plans")),
    )
    op.create_index(op.f("ix_payment_plans_agent_id"), "payment_plans", ["agent_id"])
    op.create_index("ix_payment_plans_cif_status", "payment_plans", ["cif", "status"])
    op.create_index("uq_payment_plans_active", "payment_plans", ["cif"], unique=True,
                    postgresql_where=sa.text("status = 'active'"))

    op.create_table(
        "plan_instalments",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("paid_amount", MONEY, server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'part', 'kept', 'missed')",
                           name=op.f("ck_plan_instalments_status")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_plan_instalments_amount_positive")),
        sa.CheckConstraint("paid_amount >= 0", name=op.f("ck_plan_instalments_paid_non_negative")),
        sa.ForeignKeyConstraint(["plan_id"], ["payment_plans.id"], ondelete="CASCADE",
                                name=op.f("fk_plan_instalments_plan_id_payment_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_instalments")),
        sa.UniqueConstraint("plan_id", "seq", name=op.f("uq_plan_instalments_plan_id_seq")),
    )
    op.create_index("ix_plan_instalments_due", "plan_instalments", ["status", "due_date"])

    op.create_table(
        "plan_allocations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("instalment_id", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_plan_allocations_amount_positive")),
        sa.ForeignKeyConstraint(["instalment_id"], ["plan_instalments.id"], ondelete="CASCADE",
                                name=op.f("fk_plan_allocations_instalment_id_plan_instalments")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], ondelete="CASCADE",
                                name=op.f("fk_plan_allocations_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_allocations")),
        sa.UniqueConstraint("instalment_id", "payment_id",
                            name=op.f("uq_plan_allocations_instalment_id_payment_id")),
    )
    op.create_index(op.f("ix_plan_allocations_payment_id"), "plan_allocations", ["payment_id"])


def downgrade():
    op.drop_table("plan_allocations")
    op.drop_table("plan_instalments")
    op.drop_table("payment_plans")
