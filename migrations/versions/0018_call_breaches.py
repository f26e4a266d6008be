"""outbound calls outside the contact window are flagged

``call_records.window_breach``: NULL for a call the contact window allows (every inbound call,
every outbound call inside the window); for an outbound call that started outside it, the
window it broke, as "07:00–21:00" (portal/cases/contact_rules.py ``window_breach_sql``). A
partial index serves the per-agent counts (My calls, the supervisor's board, the KPIs).

The calls already stored are judged here once, by the contact rules stored then (else the
defaults 07:00–21:00) in the bank's zone (``BANK_TIMEZONE``).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 20:00:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
BACKFILL = """
WITH w AS (
    SELECT COALESCE(NULLIF(s.value->>'window_start', ''), '07:00')::time AS opens,
           COALESCE(NULLIF(s.value->>'window_end', ''), '21:00')::time AS closes
    FROM (SELECT 1) one LEFT JOIN app_settings s ON s.key = 'contact_rules'
)
UPDATE call_records r
SET window_breach = to_char(w.opens, 'HH24:MI') || '–' || to_char(w.closes, 'HH24:MI')
FROM w
WHERE r.direction = 'outbound'
  AND NOT ((r.started_at AT TIME ZONE :zone)::time >= w.opens
           AND (r.started_at AT TIME ZONE :zone)::time < w.closes)
"""


def _bank_zone() -> str:
    try:
        from flask import current_app

        return current_app.config.get("BANK_TIMEZONE") or DEFAULT_ZONE
    except RuntimeError:  # outside an app context (plain alembic)
        return DEFAULT_ZONE


def upgrade():
    op.add_column('call_records', sa.Column('window_breach', sa.String(length=40),
                                            nullable=True))
    op.create_index('ix_call_records_window_breach', 'call_records', ['agent_id', 'started_at'],
                    unique=False, postgresql_where=sa.text('window_breach IS NOT NULL'))
    op.get_bind().execute(sa.text(BACKFILL), {"zone": _bank_zone()})


def downgrade():
    op.drop_index('ix_call_records_window_breach', table_name='call_records',
                  postgresql_where=sa.text('window_breach IS NOT NULL'))
    op.drop_column('call_records', 'window_breach')
