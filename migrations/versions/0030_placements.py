"""legal and external-agency placements: the agencies a case can be placed with, and the
placements (one active per case)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 04:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def _stamps():
    return [sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("crm_now()"),
                      nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("crm_now()"),
                      nullable=False)]


def upgrade():
    op.create_table(
        "agencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        *_stamps(),
        sa.CheckConstraint("kind IN ('legal', 'agency')", name=op.f("ck_agencies_kind")),
        sa.CheckConstraint("code ~ '^[A-Z0-9_-]{2,20}$'", name=op.f("ck_agencies_code_format")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
        sa.UniqueConstraint("code", name=op.f("uq_agencies_code")),
    )
    op.create_table(
        "placements",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("placed_on", sa.Date(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_return_on", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("placed_by_id", sa.Integer(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=500), nullable=True),
        sa.Column("ended_by_id", sa.Integer(), nullable=True),
        *_stamps(),
        sa.CheckConstraint("status IN ('active', 'recalled', 'returned')",
                           name=op.f("ck_placements_status")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_placements_amount_non_negative")),
        sa.CheckConstraint("expected_return_on >= placed_on",
                           name=op.f("ck_placements_return_after_placement")),
        sa.CheckConstraint("(status = 'active') = (ended_at IS NULL)",
                           name=op.f("ck_placements_ended_unless_active")),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= placed_at",
                           name=op.f("ck_placements_ends_after_start")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE",
                                name=op.f("fk_placements_case_id_cases")),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"],
                                name=op.f("fk_placements_agency_id_agencies")),
        sa.ForeignKeyConstraint(["placed_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_placements_placed_by_id_users")),
        sa.ForeignKeyConstraint(["ended_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_placements_ended_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
    )
    op.create_index("uq_placements_one_active_per_case", "placements", ["case_id"], unique=True,
                    postgresql_where=sa.text("status = 'active'"))
    op.create_index("ix_placements_case_placed_at", "placements", ["case_id", "placed_at"])
    op.create_index("ix_placements_agency_status", "placements", ["agency_id", "status"])
    op.create_index(op.f("ix_placements_placed_by_id"), "placements", ["placed_by_id"])
    op.create_index(op.f("ix_placements_ended_by_id"), "placements", ["ended_by_id"])


def downgrade():
    op.drop_table("placements")
    op.drop_table("agencies")
