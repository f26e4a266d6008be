"""webhook ids and stored outcomes (Standard Webhooks)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 22:30:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
from sqlalchemy.dialects import postgresql

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    # one row per webhook message applied: a resend of it is answered from here
    op.create_table(
        "webhook_receipts",
        sa.Column("integration", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response", postgresql.JSONB(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("integration", "message_id", name="pk_webhook_receipts"),
        sa.CheckConstraint(
            "integration IN ('T24', 'W4', 'LOS', 'PAYMENTS', 'CTI', 'GPS', 'EVENTS')",
            name="ck_webhook_receipts_integration"),
        sa.CheckConstraint("scheme IN ('crm-hmac', 'standard')",
                           name="ck_webhook_receipts_scheme"),
    )
    op.create_index("ix_webhook_receipts_received_at", "webhook_receipts", ["received_at"])
    # the receipts of payments already received (crm-hmac: the event id names the message), so
    # a sender's resend of one of them after the upgrade is answered, not refused
    op.execute("""
        INSERT INTO webhook_receipts (integration, message_id, scheme, body_sha256, status_code,
                                      response, received_at)
        SELECT 'PAYMENTS', event_id, 'crm-hmac',
               encode(sha256(convert_to(raw_body, 'UTF8')), 'hex'), 201,
               jsonb_build_object('payment_id', id, 'status',
                                  CASE raw_payload->>'type' WHEN 'payment.failed' THEN 'failed'
                                       WHEN 'payment.reversed' THEN 'reversed'
                                       ELSE 'received' END,
                                  'duplicate', false),
               created_at
        FROM payments
        WHERE source = 'webhook' AND event_id IS NOT NULL AND raw_body IS NOT NULL
        ON CONFLICT DO NOTHING
    """)


def downgrade():
    op.drop_index("ix_webhook_receipts_received_at", table_name="webhook_receipts")
    op.drop_table("webhook_receipts")
