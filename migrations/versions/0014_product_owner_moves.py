"""products that move between customers: the moves and the ones held for ops

A bank sync that receives a known product (T24 loan, W4 card, LOS application) under another
customer records the move here (integrations/owner_moves.py): applied at the end of the run, or
held for an ops decision when the run would move too large a share of its products.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 20:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'product_owner_moves',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('run_id', sa.BigInteger(), nullable=True),
        sa.Column('integration', sa.String(length=16), nullable=False),
        sa.Column('product', sa.String(length=16), nullable=False),
        sa.Column('product_key', sa.String(length=40), nullable=False),
        sa.Column('old_cif', sa.String(length=32), nullable=False),
        sa.Column('new_cif', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
        sa.Column('detected_at', sa.DateTime(timezone=True), server_default=sa.text('crm_now()'),
                  nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.CheckConstraint("integration IN ('T24', 'W4', 'LOS', 'CRM')",
                           name=op.f('ck_product_owner_moves_integration')),
        sa.CheckConstraint("product IN ('loan', 'card', 'application')",
                           name=op.f('ck_product_owner_moves_product')),
        sa.CheckConstraint("status IN ('pending', 'applied', 'held', 'rejected', 'withdrawn')",
                           name=op.f('ck_product_owner_moves_status')),
        sa.CheckConstraint('old_cif <> new_cif', name=op.f('ck_product_owner_moves_owner_changes')),
        sa.ForeignKeyConstraint(['run_id'], ['integration_runs.id'],
                                name=op.f('fk_product_owner_moves_run_id_integration_runs'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['old_cif'], ['customers.cif'],
                                name=op.f('fk_product_owner_moves_old_cif_customers'),
                                onupdate='CASCADE'),
        sa.ForeignKeyConstraint(['new_cif'], ['customers.cif'],
                                name=op.f('fk_product_owner_moves_new_cif_customers'),
                                onupdate='CASCADE'),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'],
                                name=op.f('fk_product_owner_moves_decided_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_product_owner_moves')),
    )
    op.create_index('ix_product_owner_moves_run_id', 'product_owner_moves', ['run_id'])
    op.create_index('ix_product_owner_moves_product', 'product_owner_moves',
                    ['product', 'product_key'])
    op.create_index('ix_product_owner_moves_old_cif', 'product_owner_moves', ['old_cif'])
    op.create_index('ix_product_owner_moves_new_cif', 'product_owner_moves', ['new_cif'])
    op.create_index('ix_product_owner_moves_open', 'product_owner_moves',
                    ['product', 'product_key'], unique=True,
                    postgresql_where=sa.text("status IN ('pending', 'held')"))


def downgrade():
    op.drop_index('ix_product_owner_moves_open', table_name='product_owner_moves')
    op.drop_index('ix_product_owner_moves_new_cif', table_name='product_owner_moves')
    op.drop_index('ix_product_owner_moves_old_cif', table_name='product_owner_moves')
    op.drop_index('ix_product_owner_moves_product', table_name='product_owner_moves')
    op.drop_index('ix_product_owner_moves_run_id', table_name='product_owner_moves')
    op.drop_table('product_owner_moves')
