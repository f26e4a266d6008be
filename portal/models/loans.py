"""Bank products: loans (T24), cards (W4), loan applications (LOS), collaterals."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, TimestampMixin, sql_in
from portal.models.customers import SourceMixin, source_check
from portal.models.enums import BUCKET_NAMES, CARD_STATUSES, LOAN_STATUSES


class Loan(Base, TimestampMixin, SourceMixin):
    __tablename__ = "loans"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*LOAN_STATUSES)}", name="status"),
        CheckConstraint(f"bucket {sql_in(*BUCKET_NAMES)}", name="bucket"),
        CheckConstraint("dpd >= 0", name="dpd_non_negative"),
        CheckConstraint("original_amount >= 0", name="original_amount_non_negative"),
        CheckConstraint("outstanding >= 0", name="outstanding_non_negative"),
        CheckConstraint("due_amount >= 0", name="due_amount_non_negative"),
        CheckConstraint("min_pay >= 0", name="min_pay_non_negative"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
        source_check(),
        Index("ix_loans_cif_status", "cif", "status"),
        Index("ix_loans_bucket_dpd", "bucket", "dpd"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_number: Mapped[str] = mapped_column(String(32), unique=True)
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"))
    product_type: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3), default="VND", server_default="VND")
    original_amount: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    outstanding: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    due_amount: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    min_pay: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    next_payment_date: Mapped[date | None]
    dpd: Mapped[int] = mapped_column(default=0, server_default="0")
    bucket: Mapped[str] = mapped_column(String(8), default="current", server_default="current")
    status: Mapped[str] = mapped_column(String(16), default="OPEN", server_default="OPEN")
    disbursement_date: Mapped[date | None]
    maturity_date: Mapped[date | None]
    close_date: Mapped[date | None]
    interest_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    term: Mapped[int | None]

    customer = relationship("Customer", primaryjoin="Loan.cif == Customer.cif", viewonly=True)


class LoanBucketHistory(Base):
    """One row per stay of a loan in a bucket; to_date NULL is the current stay."""

    __tablename__ = "loan_bucket_history"
    __table_args__ = (
        CheckConstraint(f"bucket {sql_in(*BUCKET_NAMES)}", name="bucket"),
        CheckConstraint("to_date IS NULL OR to_date >= from_date", name="dates_ordered"),
        Index("ix_loan_bucket_history_account_from", "account_number", "from_date"),
        Index("ix_loan_bucket_history_open", "account_number", unique=True,
              postgresql_where="to_date IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_number: Mapped[str] = mapped_column(
        ForeignKey("loans.account_number", onupdate="CASCADE", ondelete="CASCADE")
    )
    bucket: Mapped[str] = mapped_column(String(8))
    dpd: Mapped[int | None]
    from_date: Mapped[date]
    to_date: Mapped[date | None]


class Collateral(Base, TimestampMixin, SourceMixin):
    __tablename__ = "collaterals"
    __table_args__ = (CheckConstraint("value >= 0", name="value_non_negative"), source_check())

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collateral_number: Mapped[str] = mapped_column(String(32), unique=True)
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    value: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    currency: Mapped[str] = mapped_column(String(3), default="VND", server_default="VND")
    valuation_date: Mapped[date | None]
    # vehicle
    vehicle_make: Mapped[str | None] = mapped_column(String(64))
    vehicle_model: Mapped[str | None] = mapped_column(String(64))
    vehicle_year: Mapped[int | None]
    license_plate: Mapped[str | None] = mapped_column(String(20))
    chassis_number: Mapped[str | None] = mapped_column(String(32))
    engine_number: Mapped[str | None] = mapped_column(String(32))
    # property
    property_address: Mapped[str | None] = mapped_column(String(300))
    property_area_m2: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    land_certificate_number: Mapped[str | None] = mapped_column(String(64))


class LoanCollateral(Base):
    __tablename__ = "loan_collaterals"

    account_number: Mapped[str] = mapped_column(
        ForeignKey("loans.account_number", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
    )
    collateral_number: Mapped[str] = mapped_column(
        ForeignKey("collaterals.collateral_number", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True, index=True,
    )
    source_system: Mapped[str] = mapped_column(String(8), default="T24", server_default="T24")
    last_synced_at: Mapped[datetime | None]


class LoanApplication(Base, TimestampMixin, SourceMixin):
    """An application in the loan origination system (LOS)."""

    __tablename__ = "loan_applications"
    __table_args__ = (
        CheckConstraint("requested_amount IS NULL OR requested_amount >= 0",
                        name="requested_non_negative"),
        CheckConstraint("approved_amount IS NULL OR approved_amount >= 0",
                        name="approved_non_negative"),
        source_check(),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    application_id: Mapped[str] = mapped_column(String(40), unique=True)
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"), index=True)
    account_number: Mapped[str | None] = mapped_column(
        ForeignKey("loans.account_number", onupdate="CASCADE"), index=True
    )
    product: Mapped[str] = mapped_column(String(32))
    requested_amount: Mapped[Decimal | None]
    approved_amount: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3), default="VND", server_default="VND")
    application_date: Mapped[date | None]
    decision_date: Mapped[date | None]
    disbursement_date: Mapped[date | None]
    monthly_income: Mapped[Decimal | None]
    employer: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24))
    raw: Mapped[dict | None] = mapped_column(JSONB)


class Card(Base, TimestampMixin, SourceMixin):
    """A credit card contract in the card system (W4)."""

    __tablename__ = "cards"
    __table_args__ = (
        CheckConstraint(f"status {sql_in(*CARD_STATUSES)}", name="status"),
        CheckConstraint("credit_limit >= 0", name="credit_limit_non_negative"),
        CheckConstraint("outstanding >= 0", name="outstanding_non_negative"),
        CheckConstraint("min_due >= 0", name="min_due_non_negative"),
        CheckConstraint("days_overdue >= 0", name="days_overdue_non_negative"),
        CheckConstraint(f"bucket {sql_in(*BUCKET_NAMES)}", name="bucket"),
        source_check(),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    contract_number: Mapped[str] = mapped_column(String(32), unique=True)
    cif: Mapped[str] = mapped_column(ForeignKey("customers.cif", onupdate="CASCADE"), index=True)
    masked_card_number: Mapped[str] = mapped_column(String(19))
    product: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3), default="VND", server_default="VND")
    credit_limit: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    outstanding: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    min_due: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    due_date: Mapped[date | None]
    days_overdue: Mapped[int] = mapped_column(default=0, server_default="0")
    bucket: Mapped[str] = mapped_column(String(8), default="current", server_default="current")
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE", server_default="ACTIVE")
    w4_case_id: Mapped[str | None] = mapped_column(String(40), index=True)
    w4_case_status: Mapped[str | None] = mapped_column(String(32))
