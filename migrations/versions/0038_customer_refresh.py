"""customer refresh: integration runs of kind 'refresh' (one customer fetched now from W4, LOS
or T24's enquiry, integrations/refresh.py)

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 10:45:00

"""
from alembic import op

revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None

OLD_KINDS = ("sync", "reconcile", "forward", "assign")
NEW_KINDS = (*OLD_KINDS, "refresh")


def _in(values):
    return "IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _kinds(kinds):
    op.execute("ALTER TABLE integration_runs DROP CONSTRAINT IF EXISTS ck_integration_runs_kind")
    op.execute(f"ALTER TABLE integration_runs ADD CONSTRAINT ck_integration_runs_kind "
               f"CHECK (kind {_in(kinds)})")


def upgrade():
    _kinds(NEW_KINDS)


def downgrade():
    # the refresh runs go with the kind (their quarantined records with them;
    # owner moves and payments keep theirs without the run: run_id SET NULL)
    op.execute("DELETE FROM quarantined_records WHERE run_id IN "
               "(SELECT id FROM integration_runs WHERE kind = 'refresh')")
    op.execute("UPDATE integration_runs SET retry_of_id = NULL WHERE retry_of_id IN "
               "(SELECT id FROM integration_runs WHERE kind = 'refresh')")
    op.execute("DELETE FROM integration_runs WHERE kind = 'refresh'")
    _kinds(OLD_KINDS)
