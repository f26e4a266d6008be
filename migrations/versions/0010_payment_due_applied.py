"""payments: how much of each payment the loan's due amount took (what a reversal gives back)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 09:05:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('payments', sa.Column('due_applied', sa.Numeric(precision=18, scale=2),
                                        server_default='0', nullable=False))
    # payments applied before: assume they took their whole applied amount off the due amount
    op.execute("UPDATE payments SET due_applied = applied_amount WHERE applied_amount > 0")


def downgrade():
    op.drop_column('payments', 'due_applied')
