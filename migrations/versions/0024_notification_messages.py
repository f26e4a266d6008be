"""notifications keep their words as messages, shown in the reader's language

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 00:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("notifications", sa.Column("message", postgresql.JSONB()))


def downgrade():
    op.drop_column("notifications", "message")
