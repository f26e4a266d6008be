"""ISO 20022 camt.054 import: booked credits become payments, a reversal reverses, pending and
plain debits are skipped, unknown loans are refused with the reason, a second import and a
webhook for the same reference store nothing twice, and a DTD is refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from integrations.payments.camt import CamtError, parse_camt054
from portal import clock
from portal.models import Event, Payment
from portal.payments.camt_import import import_camt054
from tests.integration.test_payments_webhook import notification, post

NS = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"


def entry(ref: str, account: str, amount: str, *, booked_at: str, indicator: str = "CRDT",
          reversal: bool = False, original: str | None = None, status: str = "BOOK",
          structured: bool = True) -> str:
    end_to_end = f"<EndToEndId>{original}</EndToEndId>" if original else ""
    remittance = (f"<Strd><CdtrRefInf><Ref>{account}</Ref></CdtrRefInf></Strd>" if structured
                  else f"<Ustrd>{account} thanh toan khoan vay</Ustrd>")
    return f"""
    <Ntry>
      <Amt Ccy="VND">{amount}</Amt>
      <CdtDbtInd>{indicator}</CdtDbtInd>
      {'<RvslInd>true</RvslInd>' if reversal else ''}
      <Sts><Cd>{status}</Cd></Sts>
      <BookgDt><DtTm>{booked_at}</DtTm></BookgDt>
      <AcctSvcrRef>{ref}</AcctSvcrRef>
      <BkTxCd><Prtry><Cd>NAPAS</Cd></Prtry></BkTxCd>
      <NtryDtls><TxDtls>
        <Refs><AcctSvcrRef>{ref}</AcctSvcrRef>{end_to_end}</Refs>
        <Amt Ccy="VND">{amount}</Amt>
        <RmtInf>{remittance}</RmtInf>
      </TxDtls></NtryDtls>
    </Ntry>"""


def document(*entries: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NS}"><BkToCstmrDbtCdtNtfctn>
  <GrpHdr><MsgId>CAMT-20261124-001</MsgId><CreDtTm>2026-11-24T10:00:00+07:00</CreDtTm></GrpHdr>
  <Ntfctn><Id>N1</Id><Acct><Id><Othr><Id>COLLECTIONS-VND</Id></Othr></Id></Acct>
  {''.join(entries)}
  </Ntfctn>
</BkToCstmrDbtCdtNtfctn></Document>""".encode()


@pytest.fixture
def loan(db, make_customer, make_loan):
    return make_loan(make_customer(), dpd=10, due_amount=Decimal("9000000"))


def test_camt054_entries_are_imported_once(app, client, db, loan):
    now = clock.now().replace(microsecond=0)
    at = (now - timedelta(hours=2)).isoformat()
    later = (now - timedelta(hours=1)).isoformat()
    data = document(
        entry("FT-C1", loan.account_number, "1500000", booked_at=at),
        entry("FT-C2", loan.account_number, "700000", booked_at=at, structured=False),
        entry("FT-R1", loan.account_number, "700000", booked_at=later, indicator="DBIT",
              reversal=True, original="FT-C2"),
        entry("FT-P1", loan.account_number, "100000", booked_at=at, status="PDNG"),
        entry("FT-D1", loan.account_number, "100000", booked_at=at, indicator="DBIT"),
        entry("FT-X1", "LN-NOT-OURS", "100000", booked_at=at),
    )
    result = import_camt054(db.session, data)
    assert result.message_id == "CAMT-20261124-001"
    assert (len(result.accepted), result.skipped) == (3, 2)
    assert [(r["reference"], r["code"]) for r in result.refused] == [("FT-X1", "unknown_loan")]
    payments = {p.reference_number: p for p in db.session.scalars(select(Payment))}
    assert payments["FT-C1"].amount == Decimal("1500000") and payments["FT-C1"].source == "manual"
    assert payments["FT-C1"].channel == "NAPAS" and payments["FT-C1"].cif == loan.cif
    assert payments["FT-C2"].status == "reversed"
    assert payments["FT-R1"].original_reference == "FT-C2"

    again = import_camt054(db.session, data)
    assert len(again.accepted) == 0 and len(again.duplicates) == 3
    # the same payment notified by webhook too: a duplicate, nothing new
    response = post(client, notification(loan, reference_number="FT-C1", amount="1500000"))
    assert response.status_code == 200 and response.get_json()["duplicate"] is True
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 3
    assert db.session.scalar(select(func.count()).select_from(Event)) == 3


def test_cli_imports_a_file(app, db, loan, tmp_path):
    path = tmp_path / "camt054.xml"
    path.write_bytes(document(entry("FT-CLI", loan.account_number, "250000",
                                    booked_at=clock.now().isoformat())))
    result = CliRunner().invoke(app.cli, ["payments", "import-camt", str(path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert '"accepted": 1' in result.output


@pytest.mark.parametrize("data", [
    b"<not xml",
    b"<Document><Other/></Document>",
    b'<!DOCTYPE d [<!ENTITY x "boom">]><Document><BkToCstmrDbtCdtNtfctn/></Document>',
])
def test_unreadable_or_dangerous_files_are_refused(data):
    with pytest.raises(CamtError):
        parse_camt054(data)
