"""Statuses people set on a case: the dictionaries of values an admin keeps (customer status,
processing state with its substates, collateral status, recovery ability, lending violation),
the history of every change, and the versions of the customer's master note."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in
from portal.models.enums import STATUS_CHANGE_SOURCES, STATUS_KINDS


class StatusValue(Base, TimestampMixin):
    """One value of a dictionary: its code, its words in both languages, its colour, and
    whether agents may still choose it. A substate (processing states only) names its parent
    state of the same dictionary. A value a case or a history row refers to is never deleted:
    it is retired (inactive)."""

    __tablename__ = "status_values"
    __table_args__ = (
        UniqueConstraint("kind", "code"),
        UniqueConstraint("kind", "id", name="uq_status_values_kind_id"),
        CheckConstraint(f"kind {sql_in(*STATUS_KINDS)}", name="kind"),
        CheckConstraint("code ~ '^[a-z0-9_]+$'", name="code_format"),
        CheckConstraint("colour ~ '^#[0-9a-f]{6}$'", name="colour_format"),
        CheckConstraint("parent_id IS NULL OR kind = 'processing_state'",
                        name="substates_of_processing_states"),
        # a substate's parent is of its own dictionary
        ForeignKeyConstraint(["kind", "parent_id"], ["status_values.kind", "status_values.id"],
                             name="fk_status_values_parent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(40))
    parent_id: Mapped[int | None] = mapped_column(index=True)
    label_vi: Mapped[str] = mapped_column(String(120))
    label_en: Mapped[str] = mapped_column(String(120))
    colour: Mapped[str] = mapped_column(String(7), default="#607d8b", server_default="#607d8b")
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    sort_order: Mapped[int] = mapped_column(default=0, server_default="0")

    parent = relationship("StatusValue", remote_side=[id], foreign_keys=[parent_id],
                          primaryjoin="StatusValue.parent_id == StatusValue.id", viewonly=True)

    def label(self, language: str | None) -> str:
        """The value's words in ``language`` ("vi" or "en")."""
        return self.label_en if language == "en" else self.label_vi


class CaseStatusChange(Base):
    """One change of a case's status in one dictionary: from what to what, by whom (none: the
    system), when and why. The case's current value is the latest row's, for each dictionary
    that has a row (``flask check invariants``)."""

    __tablename__ = "case_status_changes"
    __table_args__ = (
        CheckConstraint(f"kind {sql_in(*STATUS_KINDS)}", name="kind"),
        CheckConstraint(f"source {sql_in(*STATUS_CHANGE_SOURCES)}", name="source"),
        CheckConstraint("source = 'system' OR reason IS NOT NULL", name="manual_has_reason"),
        Index("ix_case_status_changes_case", "case_id", "kind", "changed_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    value_id: Mapped[int] = mapped_column(ForeignKey("status_values.id"), index=True)
    substate_id: Mapped[int | None] = mapped_column(ForeignKey("status_values.id"), index=True)
    previous_value_id: Mapped[int | None] = mapped_column(ForeignKey("status_values.id"),
                                                          index=True)
    previous_substate_id: Mapped[int | None] = mapped_column(ForeignKey("status_values.id"),
                                                             index=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime]

    value = relationship("StatusValue", foreign_keys=[value_id])
    substate = relationship("StatusValue", foreign_keys=[substate_id])
    previous_value = relationship("StatusValue", foreign_keys=[previous_value_id])
    previous_substate = relationship("StatusValue", foreign_keys=[previous_substate_id])
    changed_by = relationship("User", foreign_keys=[changed_by_id])


class MasterNoteVersion(Base):
    """Each text the customer's master note (``cases.notes``) was saved with: the latest is the
    note as it stands, the one before an edit is what the edit replaced."""

    __tablename__ = "master_note_versions"
    __table_args__ = (
        Index("ix_master_note_versions_cif", "cif", "edited_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(
        ForeignKey("customers.cif", onupdate="CASCADE", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    edited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    edited_at: Mapped[datetime]

    edited_by = relationship("User", foreign_keys=[edited_by_id])
