"""LOS application records -> loan_applications columns; referees -> reference customers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from integrations.fields import Quarantine, Row
from integrations.los.transform import transform_application

APPLICATION = {
    "application_id": "LOS-2025-0000001", "customer_cif": "10000001",
    "loan_account_number": "LD2500000001", "product_code": "AUTO_LOAN",
    "requested_amount": "600000000", "approved_amount": "500000000", "currency": "VND",
    "application_date": "2025-01-02", "decision_date": "2025-01-09",
    "disbursement_date": "2025-01-15", "monthly_income": "35000000",
    "employer": "Công ty TNHH An Phát", "channel": "branch", "status": "DISBURSED",
    "scoring": {"credit_score": 700, "risk_grade": "B"},
    "referees": [
        {"referee_id": "LR20000001", "relationship": "WIFE", "full_name": "Trần Thị Bình",
         "phone": "0912345678", "gender": "FEMALE", "date_of_birth": "1988-04-05"},
        {"referee_id": "LR20000002", "relationship": "NEIGHBOUR", "full_name": "Lê Văn C"},
    ],
}


def test_an_application_and_its_referees():
    row = transform_application(APPLICATION)
    assert isinstance(row, Row) and row.key == "LOS-2025-0000001"
    v = row.values
    assert (v["cif"], v["account_number"], v["product"]) == ("10000001", "LD2500000001",
                                                             "AUTO_LOAN")
    assert v["approved_amount"] == Decimal("500000000.00")
    assert v["disbursement_date"] == date(2025, 1, 15) and v["channel"] == "BRANCH"
    assert v["raw"] == {"credit_score": 700, "risk_grade": "B"}
    assert v["source_system"] == "LOS"
    wife, neighbour = row.contacts["reference_customers"]
    assert (wife["ref_cif"], wife["primary_cif"], wife["relationship_type"]) == (
        "LR20000001", "10000001", "spouse")
    assert wife["contacts"] == {"phone": "0912345678"}
    assert neighbour["relationship_type"] == "other" and neighbour["contacts"] is None
    (phone,) = row.contacts["phones"]
    assert (phone["ref_cif"], phone["number_e164"], phone["cif"]) == ("LR20000001",
                                                                      "+84912345678", None)


def test_an_application_in_review_has_no_loan():
    row = transform_application({**APPLICATION, "status": "IN_REVIEW",
                                 "loan_account_number": None, "approved_amount": None,
                                 "disbursement_date": None, "referees": []})
    assert row.values["account_number"] is None and row.contacts["reference_customers"] == []


@pytest.mark.parametrize("change, reason", [
    ({"status": "SOMETHING_ELSE"}, "status"),
    ({"requested_amount": "1.2e6 VND"}, "requested_amount"),
    ({"referees": [{"referee_id": None, "relationship": "SPOUSE"}]}, "referees[0].referee_id"),
    ({"referees": [{"referee_id": "R", "relationship": "SPOUSE", "full_name": "X",
                    "phone": "call me"}]}, "referees[0].phone"),
    ({"referees": "none"}, "referees: expected a list"),
    ({"decision_date": "2024-12-31"}, "before application_date"),
    ({"disbursement_date": None}, "required when status is DISBURSED"),
    ({"customer_cif": ""}, "customer_cif: required"),
])
def test_a_bad_application_is_quarantined_whole(change, reason):
    result = transform_application({**APPLICATION, **change}, number=4)
    assert isinstance(result, Quarantine) and reason in result.reason
    assert result.entity == "loan_applications" and result.record_number == 4
    assert result.payload["product_code"] == "AUTO_LOAN"
