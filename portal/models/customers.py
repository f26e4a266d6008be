"""Customers, their reference persons (guarantors, spouse, ...) and contact details."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in
from portal.models.enums import (
    ADDRESS_TYPES,
    CUSTOMER_STATUSES,
    CUSTOMER_TYPES,
    EMAIL_TYPES,
    PHONE_TYPES,
    SOURCE_SYSTEMS,
)


class SourceMixin:
    """Bank data is read-only in the portal; CRM-entered data carries source_system = CRM."""

    source_system: Mapped[str] = mapped_column(String(8), default="CRM", server_default="CRM")
    last_synced_at: Mapped[datetime | None]


def source_check() -> CheckConstraint:
    return CheckConstraint(f"source_system {sql_in(*SOURCE_SYSTEMS)}", name="source_system")


class Customer(Base, TimestampMixin, SourceMixin):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(f"type {sql_in(*CUSTOMER_TYPES)}", name="type"),
        CheckConstraint(f"status {sql_in(*CUSTOMER_STATUSES)}", name="status"),
        source_check(),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cif: Mapped[str] = mapped_column(String(32), unique=True)
    type: Mapped[str] = mapped_column(String(16), default="INDIVIDUAL")
    name: Mapped[str] = mapped_column(String(200), index=True)
    date_of_birth: Mapped[date | None]
    national_id: Mapped[str | None] = mapped_column(String(32), index=True)
    gender: Mapped[str | None] = mapped_column(String(10))
    company_name: Mapped[str | None] = mapped_column(String(200))
    registration_number: Mapped[str | None] = mapped_column(String(64))
    tax_id: Mapped[str | None] = mapped_column(String(32))
    segment: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE", server_default="ACTIVE")

    phones: Mapped[list[Phone]] = relationship(
        primaryjoin="Customer.cif == foreign(Phone.cif)", viewonly=True, order_by="Phone.id"
    )
    addresses: Mapped[list[Address]] = relationship(
        primaryjoin="Customer.cif == foreign(Address.cif)", viewonly=True, order_by="Address.id"
    )
    emails: Mapped[list[Email]] = relationship(
        primaryjoin="Customer.cif == foreign(Email.cif)", viewonly=True, order_by="Email.id"
    )
    references: Mapped[list[ReferenceCustomer]] = relationship(
        primaryjoin="Customer.cif == foreign(ReferenceCustomer.primary_cif)", viewonly=True
    )


class ReferenceCustomer(Base, TimestampMixin, SourceMixin):
    __tablename__ = "reference_customers"
    __table_args__ = (source_check(),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ref_cif: Mapped[str] = mapped_column(String(32), unique=True)
    primary_cif: Mapped[str] = mapped_column(
        ForeignKey("customers.cif", onupdate="CASCADE", ondelete="CASCADE"), index=True
    )
    relationship_type: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16), default="INDIVIDUAL",
                                      server_default="INDIVIDUAL")
    name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date | None]
    national_id: Mapped[str | None] = mapped_column(String(32))
    gender: Mapped[str | None] = mapped_column(String(10))
    company_name: Mapped[str | None] = mapped_column(String(200))
    contacts: Mapped[dict | None] = mapped_column(JSONB)
    # retired from the case view (portal/cases/references.py): kept, with its contacts and
    # history, hidden from the list; a bank sync leaves these two columns alone
    retired_at: Mapped[datetime | None]
    retired_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    phones: Mapped[list[Phone]] = relationship(
        primaryjoin="ReferenceCustomer.ref_cif == foreign(Phone.ref_cif)", viewonly=True,
        order_by="(Phone.is_primary.desc(), Phone.id)"
    )
    addresses: Mapped[list[Address]] = relationship(
        primaryjoin="ReferenceCustomer.ref_cif == foreign(Address.ref_cif)", viewonly=True,
        order_by="(Address.is_primary.desc(), Address.id)"
    )
    emails: Mapped[list[Email]] = relationship(
        primaryjoin="ReferenceCustomer.ref_cif == foreign(Email.ref_cif)", viewonly=True,
        order_by="(Email.is_primary.desc(), Email.id)"
    )


class ContactMixin(SourceMixin):
    """Shared columns of phones, addresses and emails: owner is a customer or a reference."""

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    is_primary: Mapped[bool] = mapped_column(default=False, server_default="false")
    is_verified: Mapped[bool] = mapped_column(default=False, server_default="false")
    verified_at: Mapped[datetime | None]
    do_not_contact: Mapped[bool] = mapped_column(default=False, server_default="false")
    notes: Mapped[str | None] = mapped_column(Text)


def contact_table_args(table: str, types: tuple[str, ...]) -> tuple:
    """The owner rule, the types, and one primary per type per owner (customer or reference
    person; the CRM's choice of a primary unsets the other rows', the bank syncs only mark a
    row primary when no other of its type is: portal/cases/contacts.py, the loaders)."""
    return (
        CheckConstraint("(cif IS NULL) <> (ref_cif IS NULL)", name="one_owner"),
        CheckConstraint(f"type {sql_in(*types)}", name="type"),
        source_check(),
        Index(f"uq_{table}_primary_cif_type", "cif", "type", unique=True,
              postgresql_where=text("is_primary AND cif IS NOT NULL")),
        Index(f"uq_{table}_primary_ref_cif_type", "ref_cif", "type", unique=True,
              postgresql_where=text("is_primary AND ref_cif IS NOT NULL")),
    )


class Phone(Base, TimestampMixin, ContactMixin):
    __tablename__ = "phones"
    __table_args__ = contact_table_args("phones", PHONE_TYPES)

    cif: Mapped[str | None] = mapped_column(
        ForeignKey("customers.cif", onupdate="CASCADE", ondelete="CASCADE"), index=True
    )
    ref_cif: Mapped[str | None] = mapped_column(
        ForeignKey("reference_customers.ref_cif", onupdate="CASCADE", ondelete="CASCADE"),
        index=True,
    )
    number: Mapped[str] = mapped_column(String(32))
    # E.164 form (+84...), used to match calls from the call centre to a customer.
    number_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    # the customer asked for no SMS on this number (portal/cases/contact_rules.py holds them)
    messages_opt_out: Mapped[bool] = mapped_column(default=False, server_default="false")
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Address(Base, TimestampMixin, ContactMixin):
    __tablename__ = "addresses"
    __table_args__ = contact_table_args("addresses", ADDRESS_TYPES)

    cif: Mapped[str | None] = mapped_column(
        ForeignKey("customers.cif", onupdate="CASCADE", ondelete="CASCADE"), index=True
    )
    ref_cif: Mapped[str | None] = mapped_column(
        ForeignKey("reference_customers.ref_cif", onupdate="CASCADE", ondelete="CASCADE"),
        index=True,
    )
    line1: Mapped[str] = mapped_column(String(300))
    line2: Mapped[str | None] = mapped_column(String(300))
    ward: Mapped[str | None] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    province: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2), default="VN", server_default="VN")
    postal_code: Mapped[str | None] = mapped_column(String(16))
    lat: Mapped[float | None] = mapped_column(Numeric(9, 6))
    lon: Mapped[float | None] = mapped_column(Numeric(9, 6))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Email(Base, TimestampMixin, ContactMixin):
    __tablename__ = "emails"
    __table_args__ = contact_table_args("emails", EMAIL_TYPES)

    cif: Mapped[str | None] = mapped_column(
        ForeignKey("customers.cif", onupdate="CASCADE", ondelete="CASCADE"), index=True
    )
    ref_cif: Mapped[str | None] = mapped_column(
        ForeignKey("reference_customers.ref_cif", onupdate="CASCADE", ondelete="CASCADE"),
        index=True,
    )
    address: Mapped[str] = mapped_column(String(254))
    # the customer asked for no e-mail at this address (portal/cases/contact_rules.py)
    messages_opt_out: Mapped[bool] = mapped_column(default=False, server_default="false")
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
