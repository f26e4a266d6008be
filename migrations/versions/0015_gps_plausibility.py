"""implausible GPS points are kept, flagged with the reason

``agent_locations.implausible_reason``: 'outside_service_area' (beyond the bank's service area,
GPS_SERVICE_AREA) or 'too_fast' (farther from the agent's previous plausible point than
GPS_MAX_SPEED_KMH allows). Such a point is stored, counted and shown as flagged, and left out of
routes, distances, the last position, visit verification and forwarding. A partial index serves
the counts of flagged points (per agent and day on the map, per 24 h on the ops page).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 20:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("agent_locations",
                  sa.Column("implausible_reason", sa.String(length=32), nullable=True))
    op.create_check_constraint(
        op.f("ck_agent_locations_implausible_reason"), "agent_locations",
        "implausible_reason IS NULL OR implausible_reason IN "
        "('outside_service_area', 'too_fast')")
    op.create_index(op.f("ix_agent_locations_implausible"), "agent_locations",
                    ["agent_id", "recorded_at"],
                    postgresql_where=sa.text("implausible_reason IS NOT NULL"))


def downgrade():
    op.drop_index(op.f("ix_agent_locations_implausible"), table_name="agent_locations")
    op.drop_constraint(op.f("ck_agent_locations_implausible_reason"), "agent_locations",
                       type_="check")
    op.drop_column("agent_locations", "implausible_reason")
