"""Customer search: every customer (with a case or not) by CIF, folded name, phone, account or
card number — one rule (portal.cases.search) behind the search page and the queue filter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.cases import search
from portal.models import Card, Case


@pytest.fixture
def people(db, make_customer, make_loan, make_phone):
    with_case = make_customer(name="Nguyễn Thị Ánh Đào")
    loan = make_loan(with_case, dpd=45, due_amount=Decimal("2000000"))
    db.session.add(Case(cif=with_case.cif, status="open", max_dpd=45,
                        total_overdue=Decimal("2000000"), priority=500))
    no_case = make_customer(name="Trần Văn Mỹ")
    make_phone(no_case, "0987 654 321", number_e164="+84987654321")
    db.session.add(Card(contract_number="CC-778899", cif=no_case.cif,
                        masked_card_number="4111********1111", credit_limit=Decimal("1"),
                        outstanding=Decimal("0"), min_due=Decimal("0"), days_overdue=0,
                        bucket="current", source_system="W4"))
    make_customer(name="Lê Văn Đức")
    db.session.commit()
    return with_case, loan, no_case


def cifs(db, q, **kwargs) -> list[str]:
    return [row.cif for row in search.customer_search(db.session, q, **kwargs).rows]


def test_each_kind_of_key_finds_the_customer(db, people):
    with_case, loan, no_case = people
    assert cifs(db, with_case.cif.lower()) == [with_case.cif]  # exact CIF, any case
    assert cifs(db, "anh dao") == [with_case.cif]  # accents ignored
    assert cifs(db, "ÁNH ĐÀO") == [with_case.cif]
    assert cifs(db, loan.account_number) == [with_case.cif]
    assert cifs(db, "cc-778899") == [no_case.cif]  # card contract number
    assert cifs(db, "0987654321") == [no_case.cif]  # national format
    assert cifs(db, "+84 987 654 321") == [no_case.cif]  # international format
    assert cifs(db, "654 321") == [no_case.cif]  # a part of the number


def test_customers_without_a_case_are_found_and_cases_come_first(db, people):
    with_case, _, no_case = people
    found = search.customer_search(db.session, "van").rows
    names = {r.name for r in found}
    assert names == {"Trần Văn Mỹ", "Lê Văn Đức"}
    assert all(r.case is None for r in found)
    mixed = search.customer_search(db.session, "CIF").rows  # a CIF prefix: all three
    assert mixed[0].cif == with_case.cif and mixed[0].case is not None


def test_wildcards_in_the_query_are_literal(db, people):
    assert cifs(db, "%%%") == []
    assert cifs(db, "___") == []


def test_short_text_matches_whole_names_only(db, people, make_customer):
    short = make_customer(name="Vy")
    db.session.commit()
    assert cifs(db, "vy") == [short.cif]
    assert cifs(db, "v") == []


def test_search_page_lists_customers_without_a_case(client, login_as, people):
    _, _, no_case = people
    login_as("supervisor")
    html = client.get("/cases/search?q=tran van my").get_data(as_text=True)
    assert html.count('data-testid="search-row"') == 1
    assert no_case.cif in html and "No collection case" in html
    # and its customer 360 opens
    assert client.get(f"/cases/{no_case.cif}").status_code == 200


def test_queue_filter_uses_the_same_rule(client, login, db, people, make_user):
    with_case, _, _ = people
    agent = make_user(role="agent")
    case = db.session.query(Case).filter_by(cif=with_case.cif).one()
    case.assigned_agent_id = agent.id
    db.session.commit()
    login(agent)
    html = client.get("/cases/?q=dao").get_data(as_text=True)
    assert html.count('data-testid="queue-row"') == 1 and with_case.cif in html


def test_a_few_digits_are_not_a_phone_search(db, people):
    # "0987" is the start of a great many mobile numbers: six digits are needed
    assert search.phone_digits("0987") is None and search.phone_digits("098765") == "098765"
    assert cifs(db, "0987") == []


def test_huge_result_sets_are_counted_up_to_a_cap(db, people, make_customer, monkeypatch,
                                                  client, login_as):
    for _ in range(4):
        make_customer(name="Phạm Văn Long")
    db.session.commit()
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    page = search.customer_search(db.session, "van long")
    assert page.capped and page.total == 4 and len(page.rows) == 4
    login_as("supervisor")
    html = client.get("/cases/search?q=van long").get_data(as_text=True)
    assert "More than 3 matches<" in html
