"""superseded discrepancies and push integrations' traffic

- ``discrepancies.status`` may be ``superseded`` (with ``superseded_by_run_id``): a
  reconciliation run of a business date replaces the open gaps of the earlier runs of that date
  instead of listing them a second time. Open duplicates already stored (the same integration,
  business date, kind and key open in several runs) are superseded by the newest here.
- ``integration_runs.status`` / ``reconciliation_runs.status`` may be ``skipped`` (a triggered
  run that had nothing to do) and ``integration_runs.note`` says why.
- ``integration_traffic``: requests of the push integrations (payment webhook, CTI webhook,
  phone positions) counted per hour at receipt, accepted and refused, with their latency.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 20:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

INTEGRATIONS = "('T24', 'W4', 'LOS', 'PAYMENTS', 'CTI', 'GPS', 'EVENTS')"
RUN_STATUSES = "('running', 'succeeded', 'partial', 'failed', 'cancelled'{})"
DISCREPANCY_STATUSES = "('open', 'resolved', 'ignored'{})"

# the newest open row of each (integration, business date, kind, key) stays open; the older
# ones are superseded by the newest's run
SUPERSEDE_DUPLICATES = """
WITH ranked AS (
    SELECT d.id, first_value(d.run_id) OVER w AS newest_run,
           row_number() OVER w AS n
    FROM discrepancies d JOIN reconciliation_runs r ON r.id = d.run_id
    WHERE d.status = 'open'
    WINDOW w AS (PARTITION BY r.integration, r.business_date, d.kind, d.key
                 ORDER BY d.run_id DESC, d.id DESC)
)
UPDATE discrepancies d SET status = 'superseded', superseded_by_run_id = ranked.newest_run,
                           updated_at = crm_now()
FROM ranked WHERE ranked.id = d.id AND ranked.n > 1
"""


def _status_check(table: str, values: str) -> None:
    op.drop_constraint(op.f(f'ck_{table}_status'), table, type_='check')
    op.create_check_constraint(op.f(f'ck_{table}_status'), table, f"status IN {values}")


def upgrade():
    with_skipped = RUN_STATUSES.format(", 'skipped'")
    _status_check('integration_runs', with_skipped)
    _status_check('reconciliation_runs', with_skipped)
    op.add_column('integration_runs', sa.Column('note', sa.Text(), nullable=True))

    _status_check('discrepancies', DISCREPANCY_STATUSES.format(", 'superseded'"))
    op.add_column('discrepancies',
                  sa.Column('superseded_by_run_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f('fk_discrepancies_superseded_by_run_id_reconciliation_runs'), 'discrepancies',
        'reconciliation_runs', ['superseded_by_run_id'], ['id'], ondelete='SET NULL')
    op.execute(SUPERSEDE_DUPLICATES)

    op.create_table(
        'integration_traffic',
        sa.Column('integration', sa.String(length=16), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('slot', sa.SmallInteger(), nullable=False),
        sa.Column('accepted', sa.Integer(), server_default='0', nullable=False),
        sa.Column('refused', sa.Integer(), server_default='0', nullable=False),
        sa.Column('latency_ms_total', sa.BigInteger(), server_default='0', nullable=False),
        sa.Column('latency_ms_max', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_received_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_accepted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_refused_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"integration IN {INTEGRATIONS}",
                           name=op.f('ck_integration_traffic_integration')),
        sa.CheckConstraint('accepted >= 0 AND refused >= 0',
                           name=op.f('ck_integration_traffic_counts')),
        sa.PrimaryKeyConstraint('integration', 'hour', 'slot',
                                name=op.f('pk_integration_traffic')),
    )


def downgrade():
    op.drop_table('integration_traffic')

    # a superseded gap was no longer current: it goes back as ignored, saying by which run
    op.execute("""
        UPDATE discrepancies SET status = 'ignored',
               resolution = coalesce(resolution, 'Superseded by reconciliation run '
                                     || coalesce(superseded_by_run_id::text, '(deleted)')),
               resolved_at = coalesce(resolved_at, updated_at)
        WHERE status = 'superseded'""")
    op.drop_constraint(op.f('fk_discrepancies_superseded_by_run_id_reconciliation_runs'),
                       'discrepancies', type_='foreignkey')
    op.drop_column('discrepancies', 'superseded_by_run_id')
    _status_check('discrepancies', DISCREPANCY_STATUSES.format(""))

    # a run that had nothing to do was a run that succeeded without loading anything
    for table in ('integration_runs', 'reconciliation_runs'):
        op.execute(f"UPDATE {table} SET status = 'succeeded' WHERE status = 'skipped'")
    op.drop_column('integration_runs', 'note')
    _status_check('reconciliation_runs', RUN_STATUSES.format(""))
    _status_check('integration_runs', RUN_STATUSES.format(""))
