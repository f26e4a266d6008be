"""workspace search: crm_fold() priced as the function call it is, so the planner reads the
trigram index for name searches instead of scanning customers

As an inlinable one-line SQL function, crm_fold looked free to the planner: at 20,000 customers a
name search scanned the whole table (136 ms) rather than read ix_customers_name_fold_trgm
(13 ms). A fixed search_path makes it a real call (not inlined: safer too) and COST 1000 says
what calling it per row costs. Its result is unchanged, so the index stays valid.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 09:25:00

"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER FUNCTION crm_fold(text) COST 1000 SET search_path = pg_catalog")


def downgrade():
    op.execute("ALTER FUNCTION crm_fold(text) COST 100 RESET search_path")
