"""Sandbox twin of T24's enquiry service (Temenos Transact style, JSON over HTTP): one customer's
position now — the CUSTOMER record, its arrangements (AA) with their bills, its LD contracts with
their past-due records, its collaterals and the links to the contracts they secure — in T24's
field names, as integrations/t24/mappings/t24-dfe.toml reads them.

``GET /api/v1/enquiries/CRM.CUSTOMER.POSITION?customerId=<cif>`` (``X-API-Key``)::

    {"header": {"id": "CRM.CUSTOMER.POSITION", "status": "success", "customerId": "…",
                "businessDate": "20261124", "audit": {"T24_time": …, "versionNumber": …}},
     "body": [{"application": "CUSTOMER", "source": "customers",
               "record": {"@ID": "…", "NAME.1": "…", "SMS.1": ["…", "…"], "ADDRESS": [["ward",
               "district"]], …}}, …]}

A multi-value field is a JSON list (its sub-values a list in the list); a single value is a
string. A customer T24 does not know answers 404 ``{"error": {"code": "customer_not_found"}}``.

The records are in the mapping profile the twin is started with (``--profile``, else
``T24_ENQUIRY_SANDBOX_PROFILE``, else ``T24_MAPPING_PROFILE``, else ``crm-json``): ``t24-dfe``
serves T24's field names as above; ``crm-json`` (the product's own T24 wire format, what
``make run``'s daily files use) serves the same records in that format (sources ``customers``,
``reference_customers``, ``collaterals``, ``loans``, ``loan_collaterals``). The enquiry must
speak the profile the daily files are loaded with: one mapping, one set of natural keys.
The records are the business day of integrations/sandbox/t24_dfe.py (the same portfolio as the
file twin, the W4 and LOS twins). The shared fault knobs (integrations/sandbox/_api.py: latency,
outage, API key, injected errors) apply. Run: ``python -m integrations.sandbox.t24_enquiry
--port 8708``; knobs also from ``T24_ENQUIRY_SANDBOX_LATENCY_MS``, ``…_OUTAGE``, …
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from flask import Flask, jsonify, request

from integrations.sandbox._api import (
    Faults,
    api_key_check,
    apply_cli_faults,
    error,
    fault_gate,
    register_fault_routes,
    run_parser,
    serve,
)
from integrations.sandbox.t24_files import SeedSource, generate_day
from integrations.t24.manifest import Manifest
from integrations.t24.mapping import load_profile
from portal import clock as portal_clock

NAME = "T24"
DEFAULT_PORT = 8708
DEFAULT_API_KEY = "sandbox-t24-enquiry-key"
ENV_PREFIX = "T24_ENQUIRY_SANDBOX"
ENQUIRY = "CRM.CUSTOMER.POSITION"
ENQUIRY_PATH = f"/api/v1/enquiries/{ENQUIRY}"
DFE = "t24-dfe"
# the T24 application each source is a record of (per profile, in the profile's load order)
APPLICATIONS = {
    DFE: {"customers": "CUSTOMER", "collaterals": "COLLATERAL",
          "aa_bill_details": "AA.BILL.DETAILS", "aa_arrangements": "AA.ARRANGEMENT",
          "pd_payment_due": "PD.PAYMENT.DUE", "ld_loans": "LD.LOANS.AND.DEPOSITS",
          "loan_collaterals": "COLLATERAL.RIGHT"},
    "crm-json": {"customers": "CUSTOMER", "reference_customers": "CUSTOMER",
                 "collaterals": "COLLATERAL", "loans": "ACCOUNT",
                 "loan_collaterals": "COLLATERAL.RIGHT"},
}


def default_profile() -> str:
    return (os.environ.get(f"{ENV_PREFIX}_PROFILE") or os.environ.get("T24_MAPPING_PROFILE")
            or "crm-json")


def _split(value: str, vm: str, sm: str):
    """A DFE field as JSON: a plain string, or a list of values (each a list of sub-values
    when it has them)."""
    if vm not in value and sm not in value:
        return value
    return [v.split(sm) if sm in v else v for v in value.split(vm)]


class Positions:
    """Every customer's records by source, read from the t24-dfe business day."""

    def __init__(self, records: dict[str, list[dict]], business_date: date,
                 profile: str = DFE):
        self.business_date = business_date
        self.profile = profile
        self.by_customer: dict[str, list[tuple[str, dict]]] = defaultdict(list)
        owner_of_account = {r["@ID"]: r["CUSTOMER"] for r in records.get("aa_arrangements", [])}
        owner_of_account.update({r["account_number"]: r["cif"]
                                 for r in records.get("loans", []) if profile != DFE})
        for source in APPLICATIONS[profile]:  # the profile's load order
            for record in records.get(source, []):
                owner = (_owner(source, record, owner_of_account) if profile == DFE
                         else _native_owner(source, record, owner_of_account))
                if owner:
                    self.by_customer[owner].append((source, record))

    def of(self, cif: str) -> list[tuple[str, dict]]:
        return self.by_customer.get(cif, [])

    def record(self, source: str, record_id: str) -> dict | None:
        """The stored record (tests and demos change it in place)."""
        for records in self.by_customer.values():
            for s, record in records:
                if s == source and record_id in (record.get("@ID"), record.get("cif"),
                                                 record.get("account_number")):
                    return record
        return None


def _native_owner(source: str, record: dict, accounts: dict[str, str]) -> str | None:
    if source == "reference_customers":
        return record.get("primary_cif")
    if source == "loan_collaterals":
        return accounts.get(record.get("account_number"))
    return record.get("cif")


def _owner(source: str, record: dict, arrangements: dict[str, str]) -> str | None:
    if source == "customers":
        return record["@ID"]
    if source in ("aa_arrangements", "pd_payment_due"):
        return record.get("CUSTOMER")
    if source == "ld_loans":
        return record.get("CUSTOMER.ID")
    if source == "aa_bill_details":
        return arrangements.get(record.get("ARRANGEMENT.ID"))
    if source in ("collaterals", "loan_collaterals"):  # @ID <customer>.1.<n>
        return record["@ID"].split(".")[0]
    return None


def read_positions(customers: int, products: int, business_date: date,
                   profile_name: str = DFE) -> Positions:
    """The seed portfolio's ``business_date`` as the daily files of ``profile_name`` hold it,
    by customer."""
    profile = load_profile(profile_name)
    vm, sm = profile.value_mark, profile.subvalue_mark
    records: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="t24-enquiry-") as tmp:
        manifest = Manifest.load(generate_day(
            Path(tmp), SeedSource(customers, products, business_date=business_date),
            profile=profile_name))
        for entry in manifest.files:
            if profile.native:
                records[entry.entity] = [json.loads(line) for line in (
                    Path(tmp) / entry.name).read_text(encoding="utf-8").splitlines() if line]
                continue
            with (Path(tmp) / entry.name).open(encoding=profile.dialect.encoding,
                                               newline="") as fp:
                reader = csv.DictReader(fp, delimiter=profile.dialect.delimiter,
                                        quotechar=profile.dialect.quote)
                records[entry.entity] = [
                    {k: _split(v, vm, sm) for k, v in row.items() if v != ""} for row in reader]
    return Positions(records, business_date, profile_name)


def create_app(*, customers: int = 200, products: int = 300, api_key: str | None = None,
               faults: Faults | None = None, seed: int = 0, profile: str | None = None,
               clock: Callable[[], datetime] = portal_clock.now) -> Flask:
    """The enquiry twin over the seed portfolio of ``customers``/``products`` as of
    ``clock()``'s bank date (read once, at the first enquiry), in ``profile``'s records."""
    profile = profile or default_profile()
    import random

    app = Flask("T24-enquiry")
    api_key = api_key or os.environ.get(f"{ENV_PREFIX}_API_KEY") or DEFAULT_API_KEY

    class State:
        pass

    state = State()
    state.faults = faults or Faults.from_env(ENV_PREFIX)
    state.lock = threading.Lock()
    state.rng = random.Random(seed)
    state.served = 0
    state.positions = None
    app.extensions["sandbox"] = state
    gate = fault_gate(state, NAME, api_key_check(api_key))

    def positions() -> Positions:
        with state.lock:
            if state.positions is None:
                state.positions = read_positions(customers, products,
                                                 portal_clock.bank_today(clock()), profile)
            return state.positions

    app.extensions["t24_positions"] = positions  # read ahead by main() at start

    @app.get(ENQUIRY_PATH)
    def customer_position():
        refused = gate()
        if refused is not None:
            return refused
        cif = (request.args.get("customerId") or "").strip()
        if not cif:
            return error(400, "bad_request", "customerId is required")
        data = positions()
        found = data.of(cif)
        if not found:
            return error(404, "customer_not_found", f"no CUSTOMER record {cif!r}")
        return jsonify({
            "header": {"id": ENQUIRY, "status": "success", "customerId": cif,
                       "businessDate": f"{data.business_date:%Y%m%d}",
                       "mapping": data.profile,
                       "audit": {"T24_time": 0, "versionNumber": "1",
                                 "requestParse_time": 0, "responseParse_time": 0},
                       "total_size": len(found)},
            "body": [{"application": APPLICATIONS[data.profile][source], "source": source,
                      "record": record} for source, record in found]})

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "system": NAME})

    register_fault_routes(app, state)

    @app.post("/_sandbox/reset")
    def reset():
        with state.lock:
            state.faults.update({"latency_ms": 0, "error_rate": 0.0, "outage": False,
                                 "outage_after": None, "malformed_rate": 0.0,
                                 "duplicates": False})
            state.served = 0
            state.positions = None
        return jsonify({"reset": True})

    return app


def main(argv: list[str] | None = None) -> int:
    parser = run_parser("python -m integrations.sandbox.t24_enquiry", DEFAULT_PORT,
                        "Sandbox T24 enquiry service (one customer's position, JSON, API key).")
    parser.add_argument("--api-key", default=os.environ.get(f"{ENV_PREFIX}_API_KEY",
                                                            DEFAULT_API_KEY))
    parser.add_argument("--profile", default=None, choices=tuple(APPLICATIONS),
                        help="the mapping profile of the records served (default: "
                             "T24_ENQUIRY_SANDBOX_PROFILE, T24_MAPPING_PROFILE, crm-json)")
    args = parser.parse_args(argv)
    faults = apply_cli_faults(Faults.from_env(ENV_PREFIX), args)
    app = create_app(customers=args.customers, products=args.products, api_key=args.api_key,
                     faults=faults, profile=args.profile)
    # the day's records are read while the server starts, not at the first agent's refresh
    threading.Thread(target=app.extensions["t24_positions"], daemon=True).start()
    serve(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
