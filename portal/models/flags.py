"""Feature flags (portal/flags): one row per flag that was ever switched — on for everyone, on
for chosen teams only, or off — and the teams it is on for. No row: on for everyone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, sql_in, utcnow

FLAG_MODES = ("all", "teams", "off")


class FeatureFlag(Base):
    __tablename__ = "feature_flags"
    __table_args__ = (CheckConstraint(f"mode {sql_in(*FLAG_MODES)}", name="mode"),)

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8), default="all", server_default="all")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.crm_now(),
                                                 onupdate=utcnow)

    teams: Mapped[list[FeatureFlagTeam]] = relationship(
        cascade="all, delete-orphan", order_by="FeatureFlagTeam.team_id")


class FeatureFlagTeam(Base):
    """A team a flag in mode ``teams`` is on for (a deleted team leaves the list with it)."""

    __tablename__ = "feature_flag_teams"

    flag_name: Mapped[str] = mapped_column(
        ForeignKey("feature_flags.name", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
