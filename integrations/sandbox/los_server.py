"""Sandbox twin of LOS: ``GET /api/v1/applications`` (``Authorization: Bearer``), keyset pages
with an ``updated_since`` cursor, ``GET /api/v1/customers/<cif>/applications`` (one customer's,
404 for a customer LOS does not know), fault knobs (integrations/sandbox/_api.py,
docs/integrations.md).

Applications are the demo generator's (``portal.seed.portfolio``); each carries as referees the
reference persons the seed gave its customer (with LOS's own ids, ``LR…``). Run:
``python -m integrations.sandbox.los_server --port 8702``; knobs also from
``LOS_SANDBOX_LATENCY_MS``, ``LOS_SANDBOX_ERROR_RATE``, ``LOS_SANDBOX_OUTAGE``, ...
"""

from __future__ import annotations

import hmac
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from flask import Flask, request

from integrations.sandbox._api import (
    Faults,
    apply_cli_faults,
    collection_builder,
    create_api_app,
    run_parser,
    serve,
)
from integrations.sandbox.t24_files import SeedSource
from portal import clock as portal_clock

NAME = "LOS"
DEFAULT_PORT = 8702
DEFAULT_TOKEN = "sandbox-los-token"
ENV_PREFIX = "LOS_SANDBOX"
# one customer's applications (a refresh of one customer)
CUSTOMER_PATH = "/api/v1/customers/<cif>/applications"
# Ours -> LOS relationship code (by the referee's gender where LOS distinguishes).
_LOS_RELATION = {"spouse": ("SPOUSE", "SPOUSE"), "parent": ("FATHER", "MOTHER"),
                 "child": ("SON", "DAUGHTER"), "sibling": ("BROTHER", "SISTER"),
                 "guarantor": ("GUARANTOR", "GUARANTOR"), "co_signer": ("CO_SIGNER", "CO_SIGNER"),
                 "relative": ("RELATIVE", "RELATIVE"), "colleague": ("COLLEAGUE", "COLLEAGUE"),
                 "friend": ("FRIEND", "FRIEND")}


def _text(value):
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    return value


def referee_record(ref: dict) -> dict:
    male, female = _LOS_RELATION.get(ref["relationship_type"], ("OTHER", "OTHER"))
    contacts = ref.get("contacts")
    if isinstance(contacts, str):
        contacts = json.loads(contacts)
    return {
        "referee_id": "L" + ref["ref_cif"],
        "relationship": female if ref.get("gender") == "FEMALE" else male,
        "full_name": ref["name"],
        "phone": (contacts or {}).get("phone"),
        "national_id": ref.get("national_id"),
        "date_of_birth": _text(ref.get("date_of_birth")),
        "gender": ref.get("gender"),
    }


def application_record(row: dict, referees: list[dict]) -> dict:
    raw = row.get("raw")
    if isinstance(raw, str):
        raw = json.loads(raw)
    return {
        "application_id": row["application_id"],
        "customer_cif": row["cif"],
        "loan_account_number": row["account_number"],
        "product_code": row["product"],
        "requested_amount": _text(row["requested_amount"]),
        "approved_amount": _text(row["approved_amount"]),
        "currency": row["currency"],
        "application_date": _text(row["application_date"]),
        "decision_date": _text(row["decision_date"]),
        "disbursement_date": _text(row["disbursement_date"]),
        "monthly_income": _text(row["monthly_income"]),
        "employer": row["employer"],
        "channel": row["channel"],
        "status": row["status"],
        "scoring": raw,
        "referees": referees,
    }


def seed_applications(customers: int, products: int, *,
                      business_date: date | None = None) -> list[dict]:
    """The applications of the seed portfolio as of ``business_date`` (default: the bank's
    date on the product clock): application ids and dates follow it."""

    source = SeedSource(customers, products, business_date=business_date)
    applications, references = [], defaultdict(list)
    for table, row in source.table_rows(("loan_applications", "reference_customers")):
        if table == "reference_customers":
            references[row["primary_cif"]].append(row)
        else:
            applications.append(row)
    return [application_record(row, [referee_record(r) for r in references[row["cif"]][:2]])
            for row in applications]


def malform(record: dict, h: int) -> dict:
    kind = h % 3
    if kind == 0:
        record["status"] = "SOMETHING_ELSE"
    elif kind == 1:
        record["requested_amount"] = "1.2e6 VND"
    else:
        record["referees"] = [{"referee_id": None, "relationship": "SPOUSE"}]
    return record


def mutate(record: dict, h: int, now: datetime) -> None:
    """An application moves on: a decision, or a disbursement of an approved one."""
    today = now.astimezone(UTC).date()
    if record["status"] == "IN_REVIEW":
        approved = h % 2 == 0
        record.update(status="APPROVED" if approved else "REJECTED",
                      decision_date=today.isoformat(),
                      approved_amount=record["requested_amount"] if approved else None)
    elif record["status"] == "APPROVED":
        record.update(status="DISBURSED", disbursement_date=today.isoformat())
    else:
        record["employer"] = (record.get("employer") or "Công ty TNHH") + " (cập nhật)"
        if record["application_date"]:
            start = date.fromisoformat(record["application_date"])
            record["decision_date"] = max(start, today - timedelta(days=1)).isoformat()


def create_app(records: Iterable[dict] | Callable[[], Iterable[dict]] | None = None, *,
               token: str | None = None, faults: Faults | None = None,
               customers: int = 200, products: int = 300, seed: int = 0,
               clock: Callable[[], datetime] = portal_clock.now) -> Flask:
    """The LOS simulator. ``records``: LOS application records (or a callable making them);
    default: the seed portfolio of ``customers``/``products`` as of ``clock()``'s bank date."""
    token = token or os.environ.get("LOS_SANDBOX_TOKEN") or DEFAULT_TOKEN
    build = collection_builder(
        records, lambda: seed_applications(customers, products,
                                           business_date=portal_clock.bank_today(clock())),
        "application_id", clock=clock)

    def authenticate() -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return "missing Authorization: Bearer token"
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return "invalid Bearer token"
        return None

    return create_api_app(name=NAME, collection_path="/api/v1/applications", build=build,
                          authenticate=authenticate, malform=malform, mutate=mutate,
                          faults=faults or Faults.from_env(ENV_PREFIX), seed=seed, clock=clock,
                          customer_path=CUSTOMER_PATH, customer_field="customer_cif")


def main(argv: list[str] | None = None) -> int:
    parser = run_parser("python -m integrations.sandbox.los_server", DEFAULT_PORT,
                        "Sandbox LOS (JSON REST, bearer token).")
    parser.add_argument("--token", default=os.environ.get("LOS_SANDBOX_TOKEN", DEFAULT_TOKEN))
    args = parser.parse_args(argv)
    faults = apply_cli_faults(Faults.from_env(ENV_PREFIX), args)
    app = create_app(token=args.token, faults=faults, customers=args.customers,
                     products=args.products)
    serve(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
