"""bank sync: T24/W4/LOS loader state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 04:45:00

integration_runs gains the counts of a sync run (transformed, unchanged, quarantined), its
progress while it runs (records done / total, read by the ops page) and its attempt number.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

COUNTS = ("transformed", "unchanged", "quarantined")


def upgrade():
    for name in COUNTS:
        op.add_column('integration_runs', sa.Column(name, sa.Integer(), server_default='0',
                                                    nullable=False))
    op.add_column('integration_runs', sa.Column('progress_done', sa.BigInteger(),
                                                nullable=True))
    op.add_column('integration_runs', sa.Column('progress_total', sa.BigInteger(),
                                                nullable=True))
    op.add_column('integration_runs', sa.Column('attempt', sa.Integer(), server_default='1',
                                                nullable=False))


def downgrade():
    for name in ("attempt", "progress_total", "progress_done", *COUNTS):
        op.drop_column('integration_runs', name)
