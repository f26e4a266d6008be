"""A payment whose reference comes from a VietQR code lands on the loan the code was made for:
through the payment system's signed webhook (the reference in the transfer text, with no loan
number) and through a camt.054 file (in the remittance text and as a structured creditor
reference); a reference with a typo, or naming another loan than the one given, lands nowhere."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.messages.vietqr import parse_tlv, pay_code, payment_reference
from portal.models import Payment
from portal.models.payments import RejectedNotification
from portal.payments.camt_import import import_camt
from tests.integration.test_payments_webhook import post

NOW = "2026-11-24T04:00:00+00:00"  # 11:00 bank time


@pytest.fixture
def loans(db, frozen_now, make_customer, make_loan):
    frozen_now(NOW)
    return {number: make_loan(make_customer(), dpd=20, account_number=number,
                              due_amount=Decimal("2450000"))
            for number in ("LD2432800017", "LD2432800018")}


def purpose_of(app, loan) -> str:
    """The transfer text a banking app takes from the loan's VietQR code (field 62/08)."""
    with app.test_request_context():
        code = pay_code(loan.account_number, loan.due_amount)
    fields = parse_tlv(code.payload)
    assert fields["54"] == "2450000"
    return parse_tlv(fields["62"])["08"]


def transfer(n: int, **fields) -> dict:
    return {"event_id": f"evt-qr-{n}", "type": "payment.received",
            "reference_number": f"NAPAS-QR-{n}", "amount": "2450000", "currency": "VND",
            "paid_at": "2026-11-24T03:55:00+00:00", "channel": "VIETQR", **fields}


def payments(db) -> dict:
    rows = db.session.execute(select(Payment.reference_number, Payment.account_number,
                                     Payment.cif)).all()
    db.session.rollback()
    return {r.reference_number: (r.account_number, r.cif) for r in rows}


def test_the_webhook_puts_a_vietqr_payment_on_its_loan(app, db, client, loans):
    loan = loans["LD2432800018"]
    purpose = purpose_of(app, loan)
    assert purpose == payment_reference("LD2432800018")
    # the payer's bank wraps the reference in its own transfer text
    text = f"MBVCB.11872.{purpose}.CT tu 0071000123 NGUYEN THI HANG"
    response = post(client, transfer(1, description=text))
    assert response.status_code == 201, response.get_json()
    assert payments(db) == {"NAPAS-QR-1": ("LD2432800018", loan.cif)}

    # the reference alone, as its own field, with the loan number it agrees with
    response = post(client, transfer(2, payment_reference=purpose.lower(),
                                     loan_account_number="LD2432800018", cif=loan.cif))
    assert response.status_code == 201, response.get_json()
    assert payments(db)["NAPAS-QR-2"] == ("LD2432800018", loan.cif)


def test_a_mistyped_or_contradicting_reference_lands_nowhere(app, db, client, loans):
    purpose = purpose_of(app, loans["LD2432800018"])
    typo = purpose[:-5] + ("7" if purpose[-5] != "7" else "8") + purpose[-4:]  # one digit
    response = post(client, transfer(3, payment_reference=typo))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_payment_reference"

    response = post(client, transfer(4, description=f"chuyen tien {typo}"))
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "loan_account_number"

    other = loans["LD2432800017"]
    response = post(client, transfer(5, payment_reference=purpose,
                                     loan_account_number=other.account_number, cif=other.cif))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "reference_mismatch"

    both = f"{purpose} {payment_reference('LD2432800017')}"
    response = post(client, transfer(6, description=both))
    assert response.get_json()["error"]["code"] == "ambiguous_loan_reference"
    assert payments(db) == {}
    codes = db.session.scalars(select(RejectedNotification.code)
                               .order_by(RejectedNotification.id)).all()
    assert codes == ["invalid_payment_reference", "missing_field", "reference_mismatch",
                     "ambiguous_loan_reference"]


ENTRY = """
      <Ntry>
        <Amt Ccy="VND">{amount}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><DtTm>2026-11-24T10:41:07+07:00</DtTm></BookgDt>
        <AcctSvcrRef>{ref}</AcctSvcrRef>
        <NtryDtls>
          <TxDtls>
            <Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>
            <RmtInf>{remittance}</RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>"""

CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.04">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr><MsgId>VCB-054-QR-0001</MsgId><CreDtTm>2026-11-24T11:00:00+07:00</CreDtTm></GrpHdr>
    <Ntfctn>
      <Id>VCB-054-QR-0001-01</Id>
      <CreDtTm>2026-11-24T11:00:00+07:00</CreDtTm>
      <Acct><Id><Othr><Id>0011009999999</Id></Othr></Id><Ccy>VND</Ccy></Acct>{entries}
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
"""


def test_a_camt_file_puts_vietqr_payments_on_their_loans(app, db, loans):
    for_17 = purpose_of(app, loans["LD2432800017"])
    for_18 = purpose_of(app, loans["LD2432800018"])
    typo = for_18[:6] + ("9" if for_18[6] != "9" else "8") + for_18[7:]
    entries = "".join([
        # the reference in the transfer text; a loan number elsewhere in it is not taken
        ENTRY.format(amount="2450000", ref="FT26328QR001", remittance=(
            f"<Ustrd>IBFT {for_18} tra no LD2432800017</Ustrd>")),
        # a bank that passes the purpose on as a structured creditor reference
        ENTRY.format(amount="1000000", ref="FT26328QR002", remittance=(
            f"<Strd><CdtrRefInf><Ref>{for_17}</Ref></CdtrRefInf></Strd>")),
        # a typo: no loan, and no guess
        ENTRY.format(amount="500000", ref="FT26328QR003", remittance=(
            f"<Ustrd>IBFT {typo}</Ustrd>")),
    ])
    result = import_camt(db.session, CAMT.format(entries=entries).encode(),
                         filename="vcb-qr.xml")
    db.session.commit()
    rows = [(r.reference, r.account_number, r.outcome, r.reason, r.matched_by)
            for r in result.rows]
    assert rows == [
        ("FT26328QR001", "LD2432800018", "accepted", None, "payment_reference"),
        ("FT26328QR002", "LD2432800017", "accepted", None, "creditor_reference"),
        ("FT26328QR003", None, "refused", "no_loan_reference", None),
    ]
    assert payments(db) == {
        "FT26328QR001": ("LD2432800018", loans["LD2432800018"].cif),
        "FT26328QR002": ("LD2432800017", loans["LD2432800017"].cif),
    }
