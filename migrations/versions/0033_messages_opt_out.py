"""messages: opt-out per phone and e-mail address (a customer who asked for no more SMS or
e-mail on that contact point; calls are not affected)

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 08:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade():
    for table in ("phones", "emails"):
        op.add_column(table, sa.Column('messages_opt_out', sa.Boolean(),
                                       server_default='false', nullable=False))


def downgrade():
    for table in ("phones", "emails"):
        op.drop_column(table, 'messages_opt_out')
