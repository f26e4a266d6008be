"""The T24 generator reading the demo database: the files describe the rows the portal shows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from integrations.fields import Row
from integrations.sandbox.t24_files import DatabaseSource, generate_day
from integrations.t24.manifest import verify
from integrations.t24.parser import read_records
from integrations.t24.transform import transform_records


def test_files_from_the_database(app, db, make_customer, make_loan, tmp_path):
    from portal.models import Phone

    customer = make_customer(name="Phạm Thị Dung", segment="MASS")
    db.session.add_all([
        Phone(cif=customer.cif, type="MOBILE", number="0901234567", is_primary=True,
              source_system="T24"),
        Phone(cif=customer.cif, type="MOBILE", number="0987654321", source_system="CRM"),
    ])
    db.session.commit()
    loan = make_loan(customer=customer, dpd=40, outstanding=Decimal("12345678.90"))
    make_loan(customer=make_customer(source_system="CRM"), dpd=0, source_system="CRM")

    source = DatabaseSource(app.config["SQLALCHEMY_DATABASE_URI"],
                            business_date=date(2026, 11, 24))
    result = verify(generate_day(tmp_path, source, fmt="xml"))
    assert result.ok, result.errors
    rows = {entry.entity: [r for r in transform_records(read_records(path, entry.entity))]
            for entry, path in result.files()}
    assert all(isinstance(r, Row) for values in rows.values() for r in values)
    (customer_row,) = rows["customers"]  # T24's rows only
    assert customer_row.values["name"] == "Phạm Thị Dung"
    assert [p["number"] for p in customer_row.contacts["phones"]] == ["0901234567"]
    (loan_row,) = rows["loans"]
    assert loan_row.key == loan.account_number
    assert loan_row.values["outstanding"] == Decimal("12345678.90")
    assert loan_row.values["bucket"] == "31-60"
    assert result.manifest.entry("loans").control_totals["outstanding"] == Decimal("12345678.90")
