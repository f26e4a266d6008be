"""supervisor KPIs: daily per-agent aggregates and portfolio (roll-rate) snapshots

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 05:05:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    money = sa.Numeric(precision=18, scale=2)
    op.create_table(
        'kpi_agent_daily',
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('contacts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('promises', sa.Integer(), server_default='0', nullable=False),
        sa.Column('promised_amount', money, server_default='0', nullable=False),
        sa.Column('collected', money, server_default='0', nullable=False),
        sa.Column('collected_on_promises', money, server_default='0', nullable=False),
        sa.Column('cases_worked', sa.Integer(), server_default='0', nullable=False),
        sa.Column('active_seconds', sa.Integer(), server_default='0', nullable=False),
        sa.Column('talk_seconds', sa.Integer(), server_default='0', nullable=False),
        sa.Column('answered_calls', sa.Integer(), server_default='0', nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['users.id'],
                                name=op.f('fk_kpi_agent_daily_agent_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('agent_id', 'day', name=op.f('pk_kpi_agent_daily')),
    )
    op.create_index('ix_kpi_agent_daily_day', 'kpi_agent_daily', ['day'], unique=False)
    op.create_table(
        'kpi_portfolio_snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('start_date', sa.Date(), nullable=False),
        sa.Column('end_date', sa.Date(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'],
                                name=op.f('fk_kpi_portfolio_snapshots_team_id_teams'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kpi_portfolio_snapshots')),
        sa.UniqueConstraint('team_id', 'start_date',
                            name=op.f('uq_kpi_portfolio_snapshots_team_id_start_date')),
    )


def downgrade():
    op.drop_table('kpi_portfolio_snapshots')
    op.drop_index('ix_kpi_agent_daily_day', table_name='kpi_agent_daily')
    op.drop_table('kpi_agent_daily')
