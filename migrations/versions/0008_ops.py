"""ops: alerts (raised / cleared history, one firing row per condition)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 05:15:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'alerts',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.String(length=160), nullable=False),
        sa.Column('rule', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.String(length=100), nullable=True),
        sa.Column('severity', sa.String(length=16), server_default='warning', nullable=False),
        sa.Column('status', sa.String(length=16), server_default='firing', nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('link', sa.String(length=300), nullable=True),
        sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('raised_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('webhook_status', sa.String(length=16), nullable=True),
        sa.Column('webhook_attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('webhook_error', sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('firing', 'resolved')", name=op.f('ck_alerts_status')),
        sa.CheckConstraint("severity IN ('warning', 'critical')",
                           name=op.f('ck_alerts_severity')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    )
    op.create_index('ix_alerts_firing_key', 'alerts', ['key'], unique=True,
                    postgresql_where=sa.text("status = 'firing'"))
    op.create_index('ix_alerts_raised_at', 'alerts', ['raised_at'], unique=False)


def downgrade():
    op.drop_index('ix_alerts_raised_at', table_name='alerts')
    op.drop_index('ix_alerts_firing_key', table_name='alerts')
    op.drop_table('alerts')
