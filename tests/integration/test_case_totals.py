"""A case's totals come from its customer's open products, by one definition."""

from datetime import date
from decimal import Decimal

from portal.cases.queue import recompute_case_totals
from portal.models import Card, Case


def _card(db, customer, **kwargs):
    card = Card(contract_number=kwargs.pop("contract_number"), cif=customer.cif,
                masked_card_number="4221 51** **** 2279", source_system="W4", **kwargs)
    db.session.add(card)
    db.session.commit()
    return card


def test_totals_are_loans_due_plus_overdue_cards_min_due(db, make_customer, make_loan, make_case):
    customer = make_customer()
    make_loan(customer, dpd=45, due_amount=Decimal("5000000.50"), outstanding=Decimal("80000000"))
    make_loan(customer, dpd=0, due_amount=Decimal("0"), outstanding=Decimal("20000000"))
    make_loan(customer, dpd=200, status="CLOSED", due_amount=Decimal("999"),
              outstanding=Decimal("999"))  # closed: not counted
    _card(db, customer, contract_number="W4C1", days_overdue=31, bucket="31-60",
          min_due=Decimal("2780000"), outstanding=Decimal("25800000"))
    _card(db, customer, contract_number="W4C2", days_overdue=0, min_due=Decimal("1500000"),
          outstanding=Decimal("3000000"))  # current card: its minimum due is not overdue
    case = make_case(customer, total_overdue=Decimal("12160000"), max_dpd=3)

    assert recompute_case_totals(db.session) == 1
    db.session.commit()
    db.session.refresh(case)
    assert case.total_overdue == Decimal("7780000.50")
    assert case.max_dpd == 45
    assert case.total_outstanding == Decimal("128800000")
    assert case.products == ["CARD", "PERSONAL_LOAN"]  # each open product type once
    assert recompute_case_totals(db.session) == 0  # nothing changes the second time


def test_case_without_open_products_owes_nothing(db, make_customer, make_loan, make_case):
    customer = make_customer()
    make_loan(customer, dpd=10, status="CLOSED", close_date=date(2026, 11, 1))
    case = make_case(customer, total_overdue=Decimal("100"), max_dpd=10,
                     total_outstanding=Decimal("100"), products=["PERSONAL_LOAN"])
    other = make_case(make_customer(), total_overdue=Decimal("100"))

    assert recompute_case_totals(db.session, [case.id]) == 1
    db.session.commit()
    db.session.refresh(case)
    assert (case.total_overdue, case.max_dpd, case.total_outstanding) == (0, 0, 0)
    assert case.products == []
    assert db.session.get(Case, other.id).total_overdue == Decimal("100")  # not in case_ids


def test_a_product_closing_leaves_the_case_products(db, make_customer, make_loan, make_case):
    customer = make_customer()
    loan = make_loan(customer, dpd=10, due_amount=Decimal("100"))
    make_loan(customer, dpd=5, due_amount=Decimal("50"), product_type="MORTGAGE")
    case = make_case(customer)
    recompute_case_totals(db.session)
    db.session.commit()
    db.session.refresh(case)
    assert case.products == ["MORTGAGE", "PERSONAL_LOAN"]
    loan.status = "CLOSED"
    db.session.commit()
    assert recompute_case_totals(db.session) == 1
    db.session.commit()
    db.session.refresh(case)
    assert case.products == ["MORTGAGE"] and case.total_overdue == Decimal("50")
