"""rejected GPS points (Traccar Client)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 22:30:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401
from sqlalchemy.dialects import postgresql

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

REASONS = ("'malformed', 'missing_field', 'invalid_number', 'lat_out_of_range', "
           "'lon_out_of_range', 'null_island', 'invalid_timestamp', 'future_timestamp', "
           "'too_old', 'accuracy_absurd'")


def upgrade():
    # a point sent without a time: recorded_at is the time of receipt (PostgreSQL 11+ adds a
    # column with a constant default without rewriting the table)
    op.add_column("agent_locations", sa.Column("time_source", sa.String(length=8),
                                               server_default="device", nullable=False))
    op.create_check_constraint(op.f("ck_agent_locations_time_source"), "agent_locations",
                               "time_source IN ('device', 'received')")
    op.create_table(
        "rejected_locations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(f"reason IN ({REASONS})", name=op.f("ck_rejected_locations_reason")),
        sa.CheckConstraint("source IN ('api', 'osmand')",
                           name=op.f("ck_rejected_locations_source")),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"],
                                name=op.f("fk_rejected_locations_agent_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_locations")),
        sa.UniqueConstraint("agent_id", "fingerprint",
                            name=op.f("uq_rejected_locations_agent_id_fingerprint")),
    )
    op.create_index("ix_rejected_locations_last_received_at", "rejected_locations",
                    ["last_received_at"])


def downgrade():
    op.drop_index("ix_rejected_locations_last_received_at", table_name="rejected_locations")
    op.drop_table("rejected_locations")
    # by its full name: drop_constraint would put the naming convention's prefix on it again
    op.execute("ALTER TABLE agent_locations DROP CONSTRAINT ck_agent_locations_time_source")
    op.drop_column("agent_locations", "time_source")
