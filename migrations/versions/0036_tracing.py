"""distributed tracing: events.traceparent (the W3C traceparent of the span that published
the event) and integration_runs.trace_id (the trace a run was created in)

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 10:45:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None


def upgrade():
    # nullable, no default: a metadata-only change however large the tables are
    op.add_column('events', sa.Column('traceparent', sa.String(length=55), nullable=True))
    op.add_column('integration_runs', sa.Column('trace_id', sa.String(length=32), nullable=True))


def downgrade():
    op.drop_column('integration_runs', 'trace_id')
    op.drop_column('events', 'traceparent')
