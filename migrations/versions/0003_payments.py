"""payments: webhook notifications, rejected notifications, reconciliation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 04:45:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw_body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('signature', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('failure_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('applied_amount', sa.Numeric(precision=18, scale=2),
                                      server_default='0', nullable=False))
        batch_op.add_column(sa.Column('effects_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_payments_paid_at', ['paid_at'], unique=False)

    op.create_table(
        'rejected_notifications',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('integration', sa.String(length=16), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=True),
        sa.Column('event_id', sa.String(length=64), nullable=True),
        sa.Column('reference_number', sa.String(length=64), nullable=True),
        sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('body_size', sa.Integer(), server_default='0', nullable=False),
        sa.Column('remote_addr', sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "integration IN ('T24', 'W4', 'LOS', 'PAYMENTS', 'CTI', 'GPS', 'EVENTS')",
            name=op.f('ck_rejected_notifications_integration')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rejected_notifications')),
    )
    with op.batch_alter_table('rejected_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_rejected_notifications_integration_at',
                              ['integration', 'received_at'], unique=False)


def downgrade():
    with op.batch_alter_table('rejected_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_rejected_notifications_integration_at')
    op.drop_table('rejected_notifications')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_paid_at')
        batch_op.drop_column('effects_at')
        batch_op.drop_column('applied_amount')
        batch_op.drop_column('failure_reason')
        batch_op.drop_column('signature')
        batch_op.drop_column('raw_body')
