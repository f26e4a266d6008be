"""W4 card pages and LOS application pages, served over real HTTP: whatever a page holds, the
client yields it or raises ApiError (never anything else); a sync of hostile records
completes, accounts for every record once (loaded, unchanged or quarantined with a reason),
and loads exactly the valid records of known customers."""

from __future__ import annotations

import copy
import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from integrations.fields import Row
from integrations.http import ApiError
from integrations.los.client import LOSClient
from integrations.los.load import sync_los
from integrations.los.transform import transform_application
from integrations.w4.client import W4Client
from integrations.w4.load import sync_w4
from integrations.w4.transform import transform_card
from tests.integration.sync_helpers import truncate_bank_data
from tests.property.conftest import examples
from tests.property.strategies import hostile_values, json_values

CIFS = ["10000001", "10000002"]


class PageServer:
    """Serves ``pages[cursor or ""]`` (bytes or a JSON-able value) on 127.0.0.1."""

    def __init__(self):
        self.pages: dict[str, object] = {}

        @Request.application
        def serve(request):
            page = self.pages.get(request.args.get("cursor", ""), {"data": []})
            body = page if isinstance(page, bytes) else json.dumps(page, default=str).encode()
            return Response(body, content_type="application/json")

        self._server = make_server("127.0.0.1", 0, serve, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def server():
    s = PageServer()
    yield s
    s.stop()


def clients(server):
    options = {"retries": 1, "sleep": lambda _s: None, "timeout": 5}
    return {"W4": W4Client(server.url, "key", **options),
            "LOS": LOSClient(server.url, "token", **options)}


page_bodies = st.one_of(
    st.binary(max_size=80), json_values,
    st.fixed_dictionaries({"data": st.one_of(json_values, st.lists(json_values, max_size=3))},
                          optional={"next_cursor": st.one_of(json_values, st.just("p2")),
                                    "cursor": json_values, "total": json_values}))


@examples()
@given(first=page_bodies, second=page_bodies, system=st.sampled_from(["W4", "LOS"]))
def test_any_page_is_yielded_or_an_api_error(server, first, second, system):
    server.pages = {"": first, "p2": second}
    client = clients(server)[system]
    try:
        pages = list(client.card_pages() if system == "W4" else client.application_pages())
    except ApiError as exc:
        assert str(exc)
        return
    assert all(isinstance(p.data, list) for p in pages)
    # the first page as served; a second one only when the first names it as the next
    assert pages[0].data == first["data"]
    assert len(pages) == (2 if first.get("next_cursor") == "p2" else 1)
    if len(pages) == 2:
        assert pages[1].data == second["data"]


def card(n: int, cif: str) -> dict:
    return {"contract_number": f"W4C{n:06d}", "client_cif": cif, "card_mask": "422151******1234",
            "product_code": "VISA_GOLD", "currency": "VND", "credit_limit": "50000000",
            "total_balance": "12000000", "min_amount_due": "600000",
            "payment_due_date": "2026-12-05", "days_past_due": 35, "contract_status": "ACTIVE",
            "collection_case": {"case_id": f"CS{n}", "status": "OPEN"}}


def application(n: int, cif: str) -> dict:
    return {"application_id": f"APP{n:06d}", "customer_cif": cif, "product_code": "PL",
            "requested_amount": "30000000", "currency": "VND", "application_date": "2026-01-05",
            "status": "APPROVED", "employer": "ACME",
            "referees": [{"referee_id": f"RF{n}", "relationship": "FATHER",
                          "full_name": "Trần Văn B", "phone": "0912345678"}],
            "scoring": {"score": 700}}


@st.composite
def hostile_records(draw, make, fields):
    records = []
    for n in range(draw(st.integers(1, 6))):
        record = make(n, draw(st.sampled_from([*CIFS, "UNKNOWN"])))
        for _ in range(draw(st.integers(0, 2))):
            key = draw(st.sampled_from(fields))
            if draw(st.booleans()):
                record.pop(key, None)
            else:
                record[key] = draw(hostile_values)
        records.append(record)
    if draw(st.booleans()) and records:
        records.append(copy.deepcopy(records[0]))  # the same record twice in a page
    return records


SYSTEMS = {
    "W4": (card, transform_card, sync_w4, "cards", "contract_number",
           ["contract_number", "client_cif", "card_mask", "currency", "total_balance",
            "days_past_due", "contract_status", "collection_case", "payment_due_date"]),
    "LOS": (application, transform_application, sync_los, "loan_applications", "application_id",
            ["application_id", "customer_cif", "requested_amount", "status", "application_date",
             "decision_date", "referees", "scoring", "currency"]),
}


@examples(0.5)
@given(system=st.sampled_from(["W4", "LOS"]), data=st.data())
def test_a_sync_of_hostile_records_loads_exactly_the_valid_ones(pg, server, system, data):
    make, transform, sync, table, key, fields = SYSTEMS[system]
    truncate_bank_data(pg)
    pg.execute("INSERT INTO customers (cif, type, name, source_system) VALUES "
               "(%s, 'INDIVIDUAL', 'A', 'T24'), (%s, 'INDIVIDUAL', 'B', 'T24')", CIFS)
    records = data.draw(hostile_records(make, fields))
    split = data.draw(st.integers(0, len(records)))
    server.pages = {"": {"data": records[:split], "next_cursor": "p2" if split < len(records)
                         else None}, "p2": {"data": records[split:], "next_cursor": None}}

    run = sync(pg, clients(server)[system], full=True)  # must not raise

    assert run.status in ("succeeded", "partial"), run.errors
    assert run.control()["difference"] == 0
    assert run.extracted == len(records)
    reasons = pg.execute("SELECT reason FROM quarantined_records WHERE run_id = %s",
                         (run.run_id,)).fetchall()
    assert len(reasons) == run.quarantined and all(r for (r,) in reasons)
    valid = set()
    for record in records:
        result = transform(record)
        if isinstance(result, Row) and result.values["cif"] in CIFS:
            valid.add(result.key)
    stored = {k for (k,) in pg.execute(f"SELECT {key} FROM {table}")}  # noqa: S608
    assert stored == valid
