"""field work: GPS ingest, forwarding backlog, visit verification

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 04:45:00

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401
from sqlalchemy.dialects import postgresql  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # a phone's or tracker's own id (OsmAnd/Traccar ``id``) -> the field agent it belongs to
    op.create_table(
        'field_devices',
        sa.Column('device_id', sa.String(length=64), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=True),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['users.id'],
                                name=op.f('fk_field_devices_agent_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('device_id', name=op.f('pk_field_devices')),
    )
    op.create_index(op.f('ix_field_devices_agent_id'), 'field_devices', ['agent_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_field_devices_agent_id'), table_name='field_devices')
    op.drop_table('field_devices')
