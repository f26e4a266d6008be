"""call centre: CTI events, agent mapping, status sync

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 04:45:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
from sqlalchemy.dialects import postgresql  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # call records: the call centre's agent key as received, the reference person a number
    # matched, why a call is unmatched, when the agent chose its outcome
    op.add_column('call_records', sa.Column('cti_agent_ref', sa.String(length=64), nullable=True))
    op.add_column('call_records', sa.Column('ref_cif', sa.String(length=32), nullable=True))
    op.add_column('call_records', sa.Column('unmatched_reason', sa.String(length=32),
                                            nullable=True))
    op.add_column('call_records', sa.Column('outcome_recorded_at', sa.DateTime(timezone=True),
                                            nullable=True))
    op.add_column('call_records', sa.Column('logged_at', sa.DateTime(timezone=True),
                                            nullable=True))
    op.create_index('ix_call_records_unmatched', 'call_records', ['started_at'], unique=False,
                    postgresql_where=sa.text('unmatched_reason IS NOT NULL'))
    # agent status: portal changes not yet confirmed by the call centre are retried
    op.add_column('agent_status', sa.Column('sync_attempts', sa.Integer(), server_default='0',
                                            nullable=False))
    op.add_column('agent_status', sa.Column('sync_error', sa.String(length=200), nullable=True))
    op.add_column('agent_status', sa.Column('last_sync_at', sa.DateTime(timezone=True),
                                            nullable=True))


def downgrade():
    op.drop_column('agent_status', 'last_sync_at')
    op.drop_column('agent_status', 'sync_error')
    op.drop_column('agent_status', 'sync_attempts')
    op.drop_index('ix_call_records_unmatched', table_name='call_records',
                  postgresql_where=sa.text('unmatched_reason IS NOT NULL'))
    op.drop_column('call_records', 'logged_at')
    op.drop_column('call_records', 'outcome_recorded_at')
    op.drop_column('call_records', 'unmatched_reason')
    op.drop_column('call_records', 'ref_cif')
    op.drop_column('call_records', 'cti_agent_ref')
