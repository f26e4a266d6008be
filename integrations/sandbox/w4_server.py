"""Sandbox twin of the W4 card system: ``GET /api/v1/cards`` (``X-API-Key``), keyset pages with
an ``updated_since`` cursor, ``GET /api/v1/clients/<cif>/cards`` (one client's cards, 404 for a
client W4 does not know), fault knobs (integrations/sandbox/_api.py, docs/integrations.md).

The cards are the demo generator's (``portal.seed.portfolio``), or the records handed to
:func:`create_app`. Run: ``python -m integrations.sandbox.w4_server --port 8701``; knobs also from
``W4_SANDBOX_LATENCY_MS``, ``W4_SANDBOX_ERROR_RATE``, ``W4_SANDBOX_OUTAGE``, ...
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
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
from portal.seed.portfolio import next_instalment

NAME = "W4"
DEFAULT_PORT = 8701
DEFAULT_API_KEY = "sandbox-w4-key"
ENV_PREFIX = "W4_SANDBOX"
CUSTOMER_PATH = "/api/v1/clients/<cif>/cards"  # one client's cards (a refresh of one customer)


def _text(value):
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    return value


def card_record(row: dict) -> dict:
    """A W4 card as the API serves it, from a ``cards`` row of the seed (or the database)."""
    return {
        "contract_number": row["contract_number"],
        "client_cif": row["cif"],
        "card_mask": row["masked_card_number"],
        "product_code": row["product"],
        "currency": row["currency"],
        "credit_limit": _text(row["credit_limit"]),
        "total_balance": _text(row["outstanding"]),
        "min_amount_due": _text(row["min_due"]),
        "payment_due_date": _text(row["due_date"]),
        "days_past_due": row["days_overdue"],
        "contract_status": row["status"],
        "collection_case": ({"case_id": row["w4_case_id"], "status": row["w4_case_status"]}
                            if row.get("w4_case_id") else None),
    }


def seed_cards(customers: int, products: int, *, business_date: date | None = None) -> list[dict]:
    """The cards of the seed portfolio as of ``business_date`` (default: the bank's date on
    the product clock)."""

    source = SeedSource(customers, products, business_date=business_date)
    return [card_record(row) for _, row in source.table_rows(("cards",))]


def malform(record: dict, h: int) -> dict:
    kind = h % 3
    if kind == 0:
        record["days_past_due"] = "n/a"
    elif kind == 1:
        record["card_mask"] = "4221510000001234"  # an unmasked PAN: must be refused
    else:
        record.pop("client_cif", None)
    return record


def mutate(record: dict, h: int, now: datetime) -> None:
    """A day in the life of a card: a payment cures it, or it rolls one cycle further. Either
    way the card stays consistent (portal/cases/account_checks.py): cured, its next due date is
    ahead; late, it owes a minimum and its next due date falls after the oldest unpaid one."""
    today = portal_clock.bank_today(now)
    dpd = int(record["days_past_due"])
    if dpd and h % 2:
        record.update(days_past_due=0, min_amount_due="0", contract_status="ACTIVE",
                      collection_case=None,
                      payment_due_date=(today + timedelta(days=1 + h % 25)).isoformat())
    else:
        record["days_past_due"] = dpd + 30
        record["min_amount_due"] = str(Decimal(record["min_amount_due"]) + 200_000)
        record["payment_due_date"] = next_instalment(today, dpd + 30).isoformat()
        if record["collection_case"] is None:
            record["collection_case"] = {"case_id": f"W4CS9{h % 10**7:07d}", "status": "OPEN"}


def create_app(records: Iterable[dict] | Callable[[], Iterable[dict]] | None = None, *,
               api_key: str | None = None, faults: Faults | None = None,
               customers: int = 200, products: int = 300, seed: int = 0,
               clock: Callable[[], datetime] = portal_clock.now) -> Flask:
    """The W4 simulator. ``records``: W4 card records (or a callable making them); default: the
    seed portfolio of ``customers``/``products`` as of ``clock()``'s bank date."""
    api_key = api_key or os.environ.get("W4_SANDBOX_API_KEY") or DEFAULT_API_KEY
    build = collection_builder(
        records, lambda: seed_cards(customers, products,
                                    business_date=portal_clock.bank_today(clock())),
        "contract_number", clock=clock)

    def authenticate() -> str | None:
        given = request.headers.get("X-API-Key", "")
        if not given:
            return "missing X-API-Key header"
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            return "invalid API key"
        return None

    return create_api_app(name=NAME, collection_path="/api/v1/cards", build=build,
                          authenticate=authenticate, malform=malform, mutate=mutate,
                          faults=faults or Faults.from_env(ENV_PREFIX), seed=seed, clock=clock,
                          customer_path=CUSTOMER_PATH, customer_field="client_cif")


def main(argv: list[str] | None = None) -> int:
    parser = run_parser("python -m integrations.sandbox.w4_server", DEFAULT_PORT,
                        "Sandbox W4 card system (JSON REST, API key).")
    parser.add_argument("--api-key", default=os.environ.get("W4_SANDBOX_API_KEY",
                                                            DEFAULT_API_KEY))
    args = parser.parse_args(argv)
    faults = apply_cli_faults(Faults.from_env(ENV_PREFIX), args)
    app = create_app(api_key=args.api_key, faults=faults, customers=args.customers,
                     products=args.products)
    serve(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
