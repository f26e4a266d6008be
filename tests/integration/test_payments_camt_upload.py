"""The payments pages' camt upload (ops): a file posted with the form is imported and its
results page shows every transaction with its outcome and reason in words; a file that is not
camt, a missing file or one over the limit gets a form error and imports nothing; only ops
may upload."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from portal.models import CamtImport, Payment
from tests.integration.test_payments_camt import FIXTURES, loans  # noqa: F401 - fixture


def upload(client, csrf_token, data: bytes, name: str = "statement.xml"):
    token = csrf_token("/payments/camt")
    return client.post("/payments/camt", data={"csrf_token": token,
                                               "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def imports(db) -> int:
    return db.session.scalar(select(func.count()).select_from(CamtImport))


def test_ops_uploads_a_statement_and_sees_each_transaction(client, db, login_as, csrf_token,
                                                            loans):  # noqa: F811
    login_as("ops")
    response = upload(client, csrf_token, (FIXTURES / "camt053.001.08.xml").read_bytes(),
                      "camt053.001.08.xml")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    rows = re.findall(r'data-testid="camt-transaction" data-outcome="(\w+)" '
                      r'data-reference="([^"]*)"', page)
    assert rows == [("accepted", "BT26329000610-01"), ("accepted", "BT26329000610-02"),
                    ("refused", "BT26329000610-03"), ("refused", "FT26329NODET"),
                    ("accepted", "FT26329DATE1")]
    assert "References name more than one loan" in page
    assert "No reference names a known loan" in page
    assert "ambiguous_loan_reference" not in page  # codes are shown in words
    assert "9 of 9 agree" in page
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 3
    listing = client.get("/payments/camt").get_data(as_text=True)
    assert "camt053.001.08.xml" in listing and 'data-testid="camt-import-row"' in listing


@pytest.mark.parametrize("data, name, message", [
    (b"<not xml", "broken.xml", "The file cannot be imported: not a readable XML document"),
    (b"", "", "Choose a camt.053 or camt.054 XML file."),
])
def test_a_bad_file_gets_a_form_error_and_imports_nothing(client, db, login_as, csrf_token,
                                                          data, name, message):
    login_as("ops")
    response = upload(client, csrf_token, data, name)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert imports(db) == 0


def test_a_file_over_the_limit_is_refused_by_the_form(app, client, db, login_as, csrf_token,
                                                      monkeypatch):
    monkeypatch.setitem(app.config, "CAMT_UPLOAD_MAX_BYTES", 2048)
    login_as("ops")
    response = upload(client, csrf_token, (FIXTURES / "camt053.001.08.xml").read_bytes())
    assert response.status_code == 422
    assert "larger than 2 KiB" in response.get_data(as_text=True)
    assert imports(db) == 0


def test_only_ops_uploads(client, db, login_as, csrf_token):
    login_as("agent")
    assert client.get("/payments/camt").status_code == 403
    response = upload(client, csrf_token, (FIXTURES / "camt053.001.08.xml").read_bytes())
    assert response.status_code == 403 and imports(db) == 0
