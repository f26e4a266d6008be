"""the language each user reads the portal in

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 23:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("language", sa.String(8)))


def downgrade():
    op.drop_column("users", "language")
