"""Pre-aggregated KPI figures (portal.kpi.operations reads them; workers/jobs/kpis.py fills them).

``kpi_agent_daily``: one row per agent and closed business day (bank zone) with the additive
counts of that day; today is always computed live, so the dashboard is seconds fresh while a
month reads at most ~31 small rows per agent.
``kpi_portfolio_snapshots``: per team and period start date, the bucket-to-bucket movement of
the team's loans since that date (roll-rate matrix) and each agent's cure counts; bucket history
changes only with the bank sync, so a snapshot refreshed every few minutes is exact.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base


class KpiAgentDaily(Base):
    __tablename__ = "kpi_agent_daily"
    __table_args__ = (Index("ix_kpi_agent_daily_day", "day"),)

    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                          primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    contacts: Mapped[int] = mapped_column(default=0, server_default="0")
    promises: Mapped[int] = mapped_column(default=0, server_default="0")
    promised_amount: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    collected: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    collected_on_promises: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    cases_worked: Mapped[int] = mapped_column(default=0, server_default="0")
    active_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    talk_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    answered_calls: Mapped[int] = mapped_column(default=0, server_default="0")
    computed_at: Mapped[datetime]


class KpiPortfolioSnapshot(Base):
    __tablename__ = "kpi_portfolio_snapshots"
    __table_args__ = (UniqueConstraint("team_id", "start_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    start_date: Mapped[date]
    end_date: Mapped[date]
    computed_at: Mapped[datetime]
    data: Mapped[dict] = mapped_column(JSONB)
