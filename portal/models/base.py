"""Declarative base with a naming convention, so constraint names are stable in migrations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, MetaData, Numeric, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

from portal import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Money: 18 digits with 2 decimals (VND has none in practice, other currencies need them).
Money = Numeric(18, 2)


# Indexes that only a migration describes (expression / GIN trigram indexes for search, see
# migrations/versions/0006_workspace_search.py): autogenerate and the schema test skip them.
MIGRATION_MANAGED_INDEXES = frozenset({
    "ix_customers_name_fold_trgm", "ix_customers_cif_prefix",
    "ix_phones_number_trgm", "ix_phones_number_e164_trgm",
})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic hook: leave the migration-managed indexes out of autogenerate comparisons."""
    return not (type_ == "index" and name in MIGRATION_MANAGED_INDEXES)


def utcnow() -> datetime:
    """Record stamps: the product's running clock (portal.clock), never frozen."""
    return clock.running_now()


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: DateTime(timezone=True), Decimal: Money},
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.crm_now(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.crm_now(), default=utcnow, onupdate=utcnow
    )


def sql_in(*values: str) -> str:
    """Body of a CHECK constraint limiting a column to ``values`` (use with the column name)."""
    return "IN (" + ", ".join(f"'{v}'" for v in values) + ")"
