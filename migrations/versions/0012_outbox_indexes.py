"""events: the outbox keeps only the indexes its readers use

The events table is the outbox: the relay reads unrelayed events in order (ix_events_unrelayed),
``flask events tail`` the newest (the seq key), ops replays a type since a time
(ix_events_type_occurred), and releasing held payments finds a payment's events by reference
(now ix_events_payment_aggregate, payment events only). Nothing reads events by correlation id
(the logs carry it, and the run page shows a run's log lines), and nothing reads a customer's or
a loan's events by aggregate (the case timeline, the audit log and the bucket history hold that
history). Those two indexes were 40% of the cost of writing a bulk load's events: the 2.2M events
of a first T24 load at 1M loans, written again into a copy of the table, took 22.5 s with them and
16.1 s without.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 12:30:00

"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

PAYMENT_EVENTS = "type IN ('PAYMENT_RECEIVED', 'PAYMENT_REVERSED')"


def upgrade():
    op.drop_index("ix_events_correlation_id", table_name="events")
    op.drop_index("ix_events_aggregate", table_name="events")
    op.create_index("ix_events_payment_aggregate", "events", ["aggregate_id"],
                    postgresql_where=PAYMENT_EVENTS)


def downgrade():
    op.drop_index("ix_events_payment_aggregate", table_name="events")
    op.create_index("ix_events_aggregate", "events", ["aggregate_type", "aggregate_id"])
    op.create_index("ix_events_correlation_id", "events", ["correlation_id"])
