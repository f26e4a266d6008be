"""outbound messages: templates per channel (vi, en) and every message sent, held or failed

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 08:03:44.179030

"""
import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('message_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('subject_vi', sa.String(length=200), nullable=True),
    sa.Column('subject_en', sa.String(length=200), nullable=True),
    sa.Column('body_vi', sa.Text(), nullable=False),
    sa.Column('body_en', sa.Text(), nullable=False),
    sa.Column('include_vietqr', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('crm_now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('crm_now()'), nullable=False),
    sa.CheckConstraint("channel IN ('sms', 'email', 'letter')", name=op.f('ck_message_templates_channel')),
    sa.CheckConstraint("code ~ '^[A-Z0-9_]{2,40}$'", name=op.f('ck_message_templates_code_format')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_message_templates_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    sa.UniqueConstraint('code', name=op.f('uq_message_templates_code'))
    )
    with op.batch_alter_table('message_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_templates_updated_by_id'), ['updated_by_id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('cif', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.BigInteger(), nullable=True),
    sa.Column('account_number', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=2), server_default='vi', nullable=False),
    sa.Column('phone_id', sa.BigInteger(), nullable=True),
    sa.Column('email_id', sa.BigInteger(), nullable=True),
    sa.Column('address_id', sa.BigInteger(), nullable=True),
    sa.Column('recipient', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=True),
    sa.Column('body', sa.Text(), server_default='', nullable=False),
    sa.Column('status', sa.String(length=12), server_default='queued', nullable=False),
    sa.Column('hold_reason', sa.String(length=40), nullable=True),
    sa.Column('status_detail', sa.String(length=500), nullable=True),
    sa.Column('provider_id', sa.String(length=100), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=12), server_default='manual', nullable=False),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.Column('strategy_assignment_id', sa.BigInteger(), nullable=True),
    sa.Column('payment_reference', sa.String(length=40), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('action_id', sa.BigInteger(), nullable=True),
    sa.Column('correlation_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('crm_now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('crm_now()'), nullable=False),
    sa.CheckConstraint("(status = 'held') = (hold_reason IS NOT NULL)", name=op.f('ck_messages_held_has_reason')),
    sa.CheckConstraint("channel IN ('sms', 'email', 'letter')", name=op.f('ck_messages_channel')),
    sa.CheckConstraint("source IN ('manual', 'strategy')", name=op.f('ck_messages_source')),
    sa.CheckConstraint("status IN ('queued', 'sent', 'delivered', 'failed', 'held')", name=op.f('ck_messages_status')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_messages_attempts_non_negative')),
    sa.ForeignKeyConstraint(['action_id'], ['actions.id'], name=op.f('fk_messages_action_id_actions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['address_id'], ['addresses.id'], name=op.f('fk_messages_address_id_addresses'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_messages_case_id_cases'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['cif'], ['customers.cif'], name=op.f('fk_messages_cif_customers'), onupdate='CASCADE', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_messages_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['email_id'], ['emails.id'], name=op.f('fk_messages_email_id_emails'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['phone_id'], ['phones.id'], name=op.f('fk_messages_phone_id_phones'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['message_templates.id'], name=op.f('fk_messages_template_id_message_templates'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_business_date_status', ['business_date', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_messages_cif_created', ['cif', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index('ix_messages_due', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'queued'"))
        batch_op.create_index(batch_op.f('ix_messages_template_id'), ['template_id'], unique=False)
        batch_op.create_index('uq_messages_channel_provider_id', ['channel', 'provider_id'], unique=True, postgresql_where=sa.text('provider_id IS NOT NULL'))
        batch_op.create_index('uq_messages_dedupe_key', ['dedupe_key'], unique=True, postgresql_where=sa.text('dedupe_key IS NOT NULL'))



def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('uq_messages_dedupe_key', postgresql_where=sa.text('dedupe_key IS NOT NULL'))
        batch_op.drop_index('uq_messages_channel_provider_id', postgresql_where=sa.text('provider_id IS NOT NULL'))
        batch_op.drop_index(batch_op.f('ix_messages_template_id'))
        batch_op.drop_index('ix_messages_due', postgresql_where=sa.text("status = 'queued'"))
        batch_op.drop_index(batch_op.f('ix_messages_created_by_id'))
        batch_op.drop_index('ix_messages_cif_created')
        batch_op.drop_index(batch_op.f('ix_messages_case_id'))
        batch_op.drop_index('ix_messages_business_date_status')

    op.drop_table('messages')
    with op.batch_alter_table('message_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_templates_updated_by_id'))

    op.drop_table('message_templates')
