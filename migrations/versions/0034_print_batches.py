"""print batches: the letters of a business date handed to the print vendor (PDF per letter,
combined PDF, manifest) and the letters each holds

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 08:15:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('print_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='built', nullable=False),
    sa.Column('letters', sa.Integer(), server_default='0', nullable=False),
    sa.Column('pages', sa.Integer(), server_default='0', nullable=False),
    sa.Column('directory', sa.String(length=200), nullable=False),
    sa.Column('combined_sha256', sa.String(length=64), nullable=True),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('handed_over_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handed_over_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('crm_now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('crm_now()'), nullable=False),
    sa.CheckConstraint("status IN ('built', 'handed_over')", name=op.f('ck_print_batches_status')),
    sa.CheckConstraint('letters >= 0 AND pages >= 0', name=op.f('ck_print_batches_counts_non_negative')),
    sa.CheckConstraint("(status = 'handed_over') = (handed_over_at IS NOT NULL)", name=op.f('ck_print_batches_handed_over_has_time')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_print_batches_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['handed_over_by_id'], ['users.id'], name=op.f('fk_print_batches_handed_over_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_print_batches')),
    sa.UniqueConstraint('business_date', name=op.f('uq_print_batches_business_date'))
    )
    op.create_table('print_batch_letters',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=120), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['print_batches.id'], name=op.f('fk_print_batch_letters_batch_id_print_batches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_print_batch_letters_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_print_batch_letters')),
    sa.UniqueConstraint('message_id', name=op.f('uq_print_batch_letters_message_id'))
    )
    with op.batch_alter_table('print_batch_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_print_batch_letters_batch_id'), ['batch_id'], unique=False)


def downgrade():
    with op.batch_alter_table('print_batch_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_print_batch_letters_batch_id'))
    op.drop_table('print_batch_letters')
    op.drop_table('print_batches')
