"""Factory fixtures: each returns a callable that creates and commits a row with sane defaults."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from portal import clock
from portal.models.enums import bucket_for_dpd

_seq = itertools.count(1)
DEFAULT_PASSWORD = "Passw0rd!demo"


@pytest.fixture
def make_team(db):
    from portal.models import Team

    def make(**kwargs):
        n = next(_seq)
        team = Team(name=kwargs.pop("name", f"Team {n}"), **kwargs)
        db.session.add(team)
        db.session.commit()
        return team

    return make


@pytest.fixture
def make_user(db):
    from werkzeug.security import generate_password_hash

    from portal.models import User

    def make(role: str = "agent", password: str = DEFAULT_PASSWORD, **kwargs):
        n = next(_seq)
        kwargs.setdefault("username", f"{role}{n}")
        kwargs.setdefault("full_name", f"Test {role.replace('_', ' ').title()} {n}")
        user = User(role=role, password_hash=generate_password_hash(password), **kwargs)
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_customer(db):
    from portal.models import Customer

    def make(**kwargs):
        n = next(_seq)
        kwargs.setdefault("cif", f"CIF{n:08d}")
        kwargs.setdefault("name", f"Nguyen Van {n}")
        kwargs.setdefault("source_system", "T24")
        customer = Customer(**kwargs)
        db.session.add(customer)
        db.session.commit()
        return customer

    return make


@pytest.fixture
def make_loan(db, make_customer):
    from portal.models import Loan

    def make(customer=None, dpd: int = 0, **kwargs):
        n = next(_seq)
        customer = customer or make_customer()
        kwargs.setdefault("account_number", f"LN{n:010d}")
        kwargs.setdefault("product_type", "PERSONAL_LOAN")
        kwargs.setdefault("original_amount", Decimal("100000000"))
        kwargs.setdefault("outstanding", Decimal("80000000"))
        kwargs.setdefault("due_amount", Decimal("5000000") if dpd else Decimal("0"))
        kwargs.setdefault("next_payment_date", clock.bank_today() + timedelta(days=10))
        kwargs.setdefault("source_system", "T24")
        loan = Loan(cif=customer.cif, dpd=dpd, bucket=bucket_for_dpd(dpd), **kwargs)
        db.session.add(loan)
        db.session.commit()
        return loan

    return make


@pytest.fixture
def make_phone(db):
    """``make_phone(customer_or_cif, "0912345678", **columns)``: a bank (T24) mobile by default."""
    from portal.models import Phone

    def make(owner, number: str | None = None, **kwargs):
        cif = owner if isinstance(owner, str) else owner.cif
        number = number or f"09{next(_seq):08d}"
        kwargs.setdefault("type", "MOBILE")
        kwargs.setdefault("source_system", "T24")
        kwargs.setdefault("number_e164", "+84" + number.lstrip("0"))
        phone = Phone(cif=cif, number=number, **kwargs)
        db.session.add(phone)
        db.session.commit()
        return phone

    return make


@pytest.fixture
def frozen_now(app):
    """``frozen_now("2026-11-24T23:30:00+00:00")`` (or a datetime; naive means UTC) freezes
    portal.clock for the rest of the test."""
    previous = app.config.get("FROZEN_NOW")

    def freeze(value: datetime | str) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        app.config["FROZEN_NOW"] = value
        return value

    yield freeze
    app.config["FROZEN_NOW"] = previous


def working_hour() -> datetime:
    """10:30 bank time on the running clock's business date (UTC): inside the contact window
    (07:00-21:00 bank time) whatever TEST_CLOCK says. Needs an app context (the bank's zone)."""
    from portal import clock

    return clock.bank_datetime(clock.bank_today(clock.running_now()), time(10, 30))


@pytest.fixture
def bank_hours(frozen_now):
    """Freeze the clock at ``working_hour()``, for a test that records calls or visits (the
    contact window refuses them at night) or plans today's work; returns the frozen instant."""
    return frozen_now(working_hour())
