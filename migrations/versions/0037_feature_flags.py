"""feature flags: per flag on for everyone, on for chosen teams, or off (portal/flags); no row
means on for everyone

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 10:45:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'feature_flags',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('mode', sa.String(length=8), server_default='all', nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('crm_now()'),
                  nullable=False),
        sa.CheckConstraint("mode IN ('all', 'teams', 'off')", name=op.f('ck_feature_flags_mode')),
        sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'],
                                name=op.f('fk_feature_flags_updated_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_feature_flags')),
    )
    op.create_table(
        'feature_flag_teams',
        sa.Column('flag_name', sa.String(length=40), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['flag_name'], ['feature_flags.name'],
                                name=op.f('fk_feature_flag_teams_flag_name_feature_flags'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'],
                                name=op.f('fk_feature_flag_teams_team_id_teams'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('flag_name', 'team_id', name=op.f('pk_feature_flag_teams')),
    )
    op.create_index(op.f('ix_feature_flag_teams_team_id'), 'feature_flag_teams', ['team_id'])


def downgrade():
    # the flags' states go: every capability is on for everyone again (docs/operations.md)
    op.drop_index(op.f('ix_feature_flag_teams_team_id'), table_name='feature_flag_teams')
    op.drop_table('feature_flag_teams')
    op.drop_table('feature_flags')
