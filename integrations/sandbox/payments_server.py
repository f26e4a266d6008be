"""The payment system's twin: holds transactions, sends each one to the portal as a signed
webhook (with fault knobs), and serves the daily transactions report used for reconciliation.

    python -m integrations.sandbox.payments_server --port 8703 [--scheme standard]

Webhooks are signed in the ``crm-hmac`` scheme (``X-Timestamp`` / ``X-Signature``, secret
``PAYMENTS_SANDBOX_WEBHOOK_SECRET``, default ``sandbox-payments-secret``) or, with
``--scheme standard`` (env ``PAYMENTS_SANDBOX_WEBHOOK_SCHEME``), as Standard Webhooks
(``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature``; default secret
``whsec_c2FuZGJveC1wYXltZW50cy1zZWNyZXQ=``): each notification is one message whose
``webhook-id`` stays the same on every retry and copy (docs/integrations.md, "Payment system").

Endpoints (docs/integrations.md, "Payment system"):

- ``GET /api/v1/reports/<YYYY-MM-DD>/transactions?limit=&cursor=`` — the business date's
  transactions (bank zone), keyset pages, ``X-API-Key`` header
- ``GET /health``
- ``POST /_sandbox/transactions`` ``{"transactions": [...]}`` (or one object) — customers pay:
  each gets a reference and an event id and is queued for delivery (``"notify": false`` to keep
  it out of the webhooks, as if it was dropped)
- ``POST /_sandbox/transactions/<reference>/reverse`` — reverse a payment (a new transaction)
- ``GET /_sandbox/transactions`` — every transaction; ``GET /_sandbox/deliveries`` — counters
- ``GET|PUT /_sandbox/faults`` — knobs; ``POST /_sandbox/reset``

Webhook knobs (env ``PAYMENTS_SANDBOX_<KNOB>`` or PUT /_sandbox/faults): ``duplicate_rate``
(share of notifications sent twice, the copy re-signed: the same message), ``reorder_ms`` (each
notification of a batch leaves at a random moment within this window: out-of-order delivery),
``delay_ms`` (added to every delivery), ``drop_rate`` (share never sent: only reconciliation
finds them), ``bad_signature_rate`` (first attempt signed with a wrong secret), ``max_attempts``
(a refused or failed delivery is retried with backoff, re-signed, up to this many attempts);
report API: ``latency_ms``, ``error_rate``, ``outage``.

The ``/_sandbox`` endpoints have no authentication: the simulator listens on 127.0.0.1 only and
is never part of production.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import psycopg
import requests
from flask import Flask, jsonify, request

from integrations.sandbox._api import error, serve
from integrations.sandbox.t24_files import SeedSource
from portal import clock as portal_clock
from portal.signing import CRM_HMAC, SCHEMES, STANDARD, signed_headers

WEBHOOK_PATH = "/api/v1/payments/notifications"
DEFAULT_SECRET = "sandbox-payments-secret"
DEFAULT_STANDARD_SECRET = "whsec_c2FuZGJveC1wYXltZW50cy1zZWNyZXQ="  # base64 of the one above
DEFAULT_SECRETS = {CRM_HMAC: DEFAULT_SECRET, STANDARD: DEFAULT_STANDARD_SECRET}
DEFAULT_API_KEY = "sandbox-payments-key"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 500
ENV_PREFIX = "PAYMENTS_SANDBOX"


@dataclass
class Knobs:
    duplicate_rate: float = 0.0
    reorder_ms: int = 0
    delay_ms: int = 0
    drop_rate: float = 0.0
    bad_signature_rate: float = 0.0
    max_attempts: int = 6
    latency_ms: int = 0
    error_rate: float = 0.0
    outage: bool = False

    @classmethod
    def from_env(cls) -> Knobs:
        knobs = cls()
        knobs.update({f.name: os.environ[f"{ENV_PREFIX}_{f.name.upper()}"] for f in fields(cls)
                      if os.environ.get(f"{ENV_PREFIX}_{f.name.upper()}") not in (None, "")})
        return knobs

    def update(self, values: dict) -> None:
        known = {f.name: f for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown knob {name!r}")
            if name == "outage":
                value = value if isinstance(value, bool) else str(value).lower() in (
                    "1", "true", "yes", "on")
            elif name in ("reorder_ms", "delay_ms", "max_attempts", "latency_ms"):
                value = int(value)
                if value < 0 or (name == "max_attempts" and value < 1):
                    raise ValueError(f"{name} out of range")
            else:
                value = float(value)
                if not 0 <= value <= 1:
                    raise ValueError(f"{name} must be between 0 and 1")
            setattr(self, name, value)


@dataclass
class Delivery:
    transaction: str  # reference
    body: bytes
    attempt: int = 0
    copy: bool = False  # a deliberate duplicate
    message_id: str = ""  # the webhook-id (standard scheme): one per notification


class PaymentSystem:
    """Transactions and the webhook sender (a few threads draining a timed queue)."""

    def __init__(self, *, portal_url: str | None, secret: str, knobs: Knobs, seed: int = 0,
                 zone: str = "Asia/Ho_Chi_Minh", senders: int = 4,
                 clock: Callable[[], datetime] = portal_clock.running_now,
                 scheme: str = CRM_HMAC):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}")
        self.clock = clock  # dates transactions and signs webhooks (the product's clock)
        self.portal_url = (portal_url or "").rstrip("/")
        self.secret = secret
        self.scheme = scheme
        self.knobs = knobs
        self.initial_knobs = asdict(knobs)
        self.zone = ZoneInfo(zone)
        self.rng = random.Random(seed)
        self.seed = seed
        self.lock = threading.Lock()
        self.wakeup = threading.Condition(self.lock)
        self.transactions: dict[str, dict] = {}
        self.last_signed: dict[str, int] = {}
        self.queue: list[tuple[float, int, Delivery]] = []
        self.seq = itertools.count()
        self.in_flight = 0
        self.stats = self._zero_stats()
        self._local = threading.local()  # one HTTP session per sender thread
        self.stopping = False
        self.threads = [threading.Thread(target=self._send_loop, daemon=True,
                                         name=f"payments-sandbox-sender-{i}")
                        for i in range(senders)]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _zero_stats() -> dict:
        return {"transactions": 0, "queued": 0, "sent": 0, "acknowledged": 0, "duplicates": 0,
                "dropped": 0, "bad_signatures": 0, "retries": 0, "gave_up": 0,
                "responses": {}}

    # -- transactions -------------------------------------------------------------------------
    def _reference(self) -> str:
        return f"PMT{uuid.UUID(int=self.rng.getrandbits(128)).hex[:16].upper()}"

    def create(self, items: list[dict], *, notify: bool = True) -> list[dict]:
        """Add transactions (validated lightly) and queue their notifications."""
        created = []
        now = time.time()
        with self.lock:
            for item in items:
                txn = self._transaction(item)
                self.transactions[txn["reference_number"]] = txn
                if txn["type"] == "payment.reversed":
                    self.transactions[txn["original_reference"]]["status"] = "reversed"
                self.stats["transactions"] += 1
                created.append(txn)
                if notify and item.get("notify", True):
                    self._queue_locked(txn, now)
            self.wakeup.notify_all()
        return created

    def _transaction(self, item: dict) -> dict:
        kind = item.get("type", "payment.received")
        if kind not in ("payment.received", "payment.failed", "payment.reversed"):
            raise ValueError(f"unknown type {kind!r}")
        reference = item.get("reference_number") or self._reference()
        if reference in self.transactions:
            raise ValueError(f"transaction {reference} exists")
        original = None
        if kind == "payment.reversed":
            original = self.transactions.get(item.get("original_reference") or "")
            if original is None or original["type"] != "payment.received" \
                    or original["status"] != "received":
                raise ValueError("original_reference must name a received payment")
            inherited = {k: original[k] for k in ("loan_account_number", "cif", "amount",
                                                   "currency", "channel")}
            item = {**inherited, **{k: v for k, v in item.items() if v is not None}}
        for name in ("loan_account_number", "cif", "amount"):
            if item.get(name) in (None, ""):
                raise ValueError(f"{name} is required")
        try:
            amount = Decimal(str(item["amount"]))
        except InvalidOperation:
            raise ValueError("amount is not a number") from None
        paid_at = item.get("paid_at") or self.clock().isoformat(timespec="seconds")
        txn = {
            "event_id": item.get("event_id")
            or f"evt_{uuid.UUID(int=self.rng.getrandbits(128)).hex}",
            "type": kind, "reference_number": reference,
            "loan_account_number": item["loan_account_number"], "cif": item["cif"],
            "amount": format(amount.quantize(Decimal("0.01")), "f"),
            "currency": item.get("currency") or "VND", "paid_at": paid_at,
            "channel": item.get("channel") or "MOBILE_BANKING",
            "status": {"payment.received": "received", "payment.failed": "failed",
                       "payment.reversed": "reversed"}[kind],
            "metadata": item.get("metadata") or {},
        }
        if kind == "payment.reversed":
            txn["original_reference"] = original["reference_number"]
        if kind != "payment.received" and item.get("reason"):
            txn["reason"] = str(item["reason"])
        return txn

    def business_date(self, txn: dict) -> str:
        paid = datetime.fromisoformat(txn["paid_at"])
        return paid.astimezone(self.zone).date().isoformat()

    def report(self, day: str) -> list[dict]:
        with self.lock:
            rows = [dict(t) for t in self.transactions.values() if self.business_date(t) == day]
        return sorted(rows, key=lambda t: (t["paid_at"], t["reference_number"]))

    # -- webhooks ------------------------------------------------------------------------------
    def notification_body(self, txn: dict) -> bytes:
        fields_ = ("event_id", "type", "reference_number", "original_reference",
                   "loan_account_number", "cif", "amount", "currency", "paid_at", "channel",
                   "reason", "metadata")
        return json.dumps({k: txn[k] for k in fields_ if k in txn},
                          separators=(",", ":")).encode()

    def _queue_locked(self, txn: dict, now: float) -> None:
        knobs = self.knobs
        if knobs.drop_rate and self.rng.random() < knobs.drop_rate:
            self.stats["dropped"] += 1
            return
        body = self.notification_body(txn)
        message_id = f"msg_{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
        copies = [False]
        if knobs.duplicate_rate and self.rng.random() < knobs.duplicate_rate:
            copies.append(True)
        for copy in copies:
            due = now + (knobs.delay_ms + self.rng.uniform(0, knobs.reorder_ms)) / 1000
            heapq.heappush(self.queue, (due, next(self.seq),
                                        Delivery(txn["reference_number"], body, copy=copy,
                                                 message_id=message_id)))
            self.stats["queued"] += 1
            if copy:
                self.stats["duplicates"] += 1

    def _send_loop(self) -> None:
        while True:
            with self.wakeup:
                while not self.stopping:
                    if self.queue and self.queue[0][0] <= time.time():
                        break
                    timeout = max(0.0, self.queue[0][0] - time.time()) if self.queue else None
                    self.wakeup.wait(timeout)
                if self.stopping:
                    return
                _, _, delivery = heapq.heappop(self.queue)
                self.in_flight += 1
                bad = bool(self.knobs.bad_signature_rate) and delivery.attempt == 0 and \
                    self.rng.random() < self.knobs.bad_signature_rate
            try:
                self._send(delivery, bad)
            finally:
                with self.wakeup:
                    self.in_flight -= 1
                    self.wakeup.notify_all()

    def _timestamp(self, reference: str) -> int:
        """A signing time later than any earlier attempt for the same transaction: each
        attempt is signed anew, as a real sender's retry is."""
        with self.lock:
            stamp = max(int(self.clock().timestamp()), self.last_signed.get(reference, 0) + 1)
            self.last_signed[reference] = stamp
        return stamp

    def _send(self, delivery: Delivery, bad_signature: bool) -> None:
        delivery.attempt += 1
        secret = _wrong(self.secret) if bad_signature else self.secret
        status = None
        headers = signed_headers(secret, delivery.body,
                                 timestamp=self._timestamp(delivery.transaction),
                                 scheme=self.scheme, message_id=delivery.message_id)
        try:
            http = getattr(self._local, "http", None)
            if http is None:
                http = self._local.http = requests.Session()
            response = http.post(self.portal_url + WEBHOOK_PATH, data=delivery.body,
                                      headers=headers, timeout=10)
            status = response.status_code
        except requests.RequestException:
            status = "error"
        with self.lock:
            self.stats["sent"] += 1
            if bad_signature:
                self.stats["bad_signatures"] += 1
            key = str(status)
            self.stats["responses"][key] = self.stats["responses"].get(key, 0) + 1
            if isinstance(status, int) and 200 <= status < 300:
                self.stats["acknowledged"] += 1
                return
            if delivery.attempt >= self.knobs.max_attempts:
                self.stats["gave_up"] += 1
                return
            self.stats["retries"] += 1
            backoff = min(30.0, 0.2 * 2 ** (delivery.attempt - 1))
            heapq.heappush(self.queue, (time.time() + backoff * self.rng.uniform(0.5, 1.0),
                                        next(self.seq), delivery))

    def pending(self) -> int:
        with self.lock:
            return len(self.queue) + self.in_flight

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every queued delivery has been sent (or given up)."""
        deadline = time.time() + timeout
        with self.wakeup:
            while self.queue or self.in_flight:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.wakeup.wait(min(left, 0.2))
        return True

    def reset(self) -> None:
        with self.lock:
            self.transactions.clear()
            self.last_signed.clear()
            self.queue.clear()
            self.knobs.update(self.initial_knobs)
            self.rng = random.Random(self.seed)
            self.stats = self._zero_stats()

    def stop(self) -> None:
        with self.wakeup:
            self.stopping = True
            self.wakeup.notify_all()


def _wrong(secret: str) -> str:
    """A secret the portal does not know, in the same form (a whsec_ secret stays base64)."""
    return "whsec_d3Jvbmcgc2VjcmV0" if secret.startswith("whsec_") else secret + "-wrong"


def create_app(*, portal_url: str | None = None, secret: str | None = None,
               api_key: str | None = None, knobs: Knobs | None = None, seed: int = 0,
               senders: int = 4, scheme: str | None = None) -> Flask:
    app = Flask("payments")
    scheme = scheme or os.environ.get(f"{ENV_PREFIX}_WEBHOOK_SCHEME") or CRM_HMAC
    system = PaymentSystem(
        portal_url=portal_url or os.environ.get("PORTAL_URL", "http://127.0.0.1:5000"),
        secret=secret or os.environ.get(f"{ENV_PREFIX}_WEBHOOK_SECRET")
        or DEFAULT_SECRETS.get(scheme, DEFAULT_SECRET),
        knobs=knobs or Knobs.from_env(), seed=seed, senders=senders,
        zone=os.environ.get("BANK_TIMEZONE", "Asia/Ho_Chi_Minh"), scheme=scheme,
    )
    key = api_key or os.environ.get(f"{ENV_PREFIX}_API_KEY", DEFAULT_API_KEY)
    app.extensions["payments_sandbox"] = system

    def gate():
        knobs = system.knobs
        if knobs.latency_ms:
            time.sleep(knobs.latency_ms / 1000)
        if knobs.outage:
            return error(503, "service_unavailable", "payments is down for maintenance",
                         {"Retry-After": "1"})
        if request.headers.get("X-API-Key") != key:
            return error(401, "unauthorized", "a valid X-API-Key header is required",
                         {"WWW-Authenticate": "ApiKey"})
        with system.lock:
            fail = knobs.error_rate > 0 and system.rng.random() < knobs.error_rate
        if fail:
            return error(500, "internal_error", "payments failed to answer (injected fault)")
        return None

    @app.get("/api/v1/reports/<day>/transactions")
    def report(day: str):
        refused = gate()
        if refused is not None:
            return refused
        try:
            datetime.strptime(day, "%Y-%m-%d")
            limit = int(request.args.get("limit", DEFAULT_LIMIT))
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError
        except ValueError:
            return error(400, "bad_request", f"the date must be YYYY-MM-DD and limit between "
                                             f"1 and {MAX_LIMIT}")
        rows = system.report(day)
        start = 0
        cursor = request.args.get("cursor")
        if cursor:  # position after (paid_at, reference)
            paid_at, _, reference = cursor.partition("|")
            start = next((i for i, t in enumerate(rows)
                          if (t["paid_at"], t["reference_number"]) > (paid_at, reference)),
                         len(rows))
        page = rows[start:start + limit]
        position = f"{page[-1]['paid_at']}|{page[-1]['reference_number']}" if page else cursor
        more = start + limit < len(rows)
        return jsonify({"business_date": day, "data": page, "cursor": position,
                        "next_cursor": position if more else None, "total": len(rows) - start,
                        "limit": limit})

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "system": "PAYMENTS",
                        "transactions": len(system.transactions), "pending": system.pending()})

    @app.post("/_sandbox/transactions")
    def create_transactions():
        body = request.get_json(silent=True)
        items = body.get("transactions") if isinstance(body, dict) and \
            "transactions" in body else [body]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return error(400, "bad_request", "send a transaction object or "
                                             "{\"transactions\": [...]}")
        notify = not (isinstance(body, dict) and body.get("notify") is False)
        try:
            created = system.create(items, notify=notify)
        except (ValueError, KeyError) as exc:
            return error(400, "bad_request", str(exc))
        return jsonify({"transactions": created}), 201

    @app.post("/_sandbox/transactions/<reference>/reverse")
    def reverse(reference: str):
        body = request.get_json(silent=True) or {}
        try:
            created = system.create([{"type": "payment.reversed",
                                      "original_reference": reference,
                                      "reason": body.get("reason", "reversed by the bank"),
                                      "paid_at": body.get("paid_at")}])
        except (ValueError, KeyError) as exc:
            return error(400, "bad_request", str(exc))
        return jsonify(created[0]), 201

    @app.get("/_sandbox/transactions")
    def list_transactions():
        with system.lock:
            return jsonify({"transactions": list(system.transactions.values())})

    @app.get("/_sandbox/deliveries")
    def deliveries():
        with system.lock:
            stats = json.loads(json.dumps(system.stats))
        return jsonify({**stats, "pending": system.pending()})

    @app.post("/_sandbox/wait")
    def wait():
        timeout = float((request.get_json(silent=True) or {}).get("timeout", 30))
        return jsonify({"idle": system.wait_idle(timeout), "pending": system.pending()})

    @app.get("/_sandbox/faults")
    def get_knobs():
        return jsonify(asdict(system.knobs))

    @app.put("/_sandbox/faults")
    def put_knobs():
        values = request.get_json(silent=True)
        if not isinstance(values, dict):
            return error(400, "bad_request", "send a JSON object of knobs")
        try:
            with system.lock:
                system.knobs.update(values)
        except (TypeError, ValueError) as exc:
            return error(400, "bad_request", str(exc))
        return jsonify(asdict(system.knobs))

    @app.post("/_sandbox/reset")
    def reset():
        system.reset()
        return jsonify({"reset": True})

    return app


def seed_payers(customers: int, products: int) -> list[dict]:
    """Delinquent open loans of the demo portfolio (``portal.seed``, as ``seed-demo``)."""

    rows = SeedSource(customers, products).table_rows(("loans",))
    return [{"loan_account_number": r["account_number"], "cif": r["cif"],
             "currency": r["currency"], "due": int(r["due_amount"] or 0)}
            for _, r in rows if r["status"] == "OPEN" and (r["due_amount"] or 0) > 0]


def payers_from_database(url: str, limit: int = 2000) -> list[dict]:
    """Delinquent open loans read from the bank's loan book (the demo's database): the payment
    system and the core banking system share the bank's accounts."""

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT account_number, cif, currency, due_amount FROM loans "
            "WHERE status = 'OPEN' AND due_amount > 0 ORDER BY account_number LIMIT %s",
            (limit,)).fetchall()
    return [{"loan_account_number": a, "cif": c, "currency": cur, "due": int(d)}
            for a, c, cur, d in rows]


def start_demo_payments(system: PaymentSystem, payers: Callable[[], list[dict]],
                        every: float) -> threading.Thread:
    """Every ``every`` seconds a customer of the demo portfolio pays part of what is due."""

    def run() -> None:
        candidates = payers()
        while not system.stopping and candidates:
            time.sleep(every)
            payer = system.rng.choice(candidates)
            share = system.rng.choice((0.25, 0.5, 1.0))
            amount = max(100000, int(payer["due"] * share) // 1000 * 1000)
            try:
                system.create([{k: v for k, v in payer.items() if k != "due"}
                               | {"amount": str(amount)}])
            except ValueError:
                continue

    thread = threading.Thread(target=run, daemon=True, name="payments-sandbox-demo")
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="payments_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8703)
    parser.add_argument("--portal-url", default=None,
                        help="where webhooks go (default: $PORTAL_URL)")
    parser.add_argument("--customers", type=int, default=2000,
                        help="size of the seed portfolio whose customers pay (as seed-demo)")
    parser.add_argument("--products", type=int, default=3000)
    parser.add_argument("--scheme", choices=SCHEMES, default=None,
                        help="how webhooks are signed (default: $PAYMENTS_SANDBOX_WEBHOOK_SCHEME "
                             "or crm-hmac)")
    parser.add_argument("--pay-every", type=float,
                        default=float(os.environ.get(f"{ENV_PREFIX}_PAY_EVERY", "0")),
                        help="seconds between demo payments by seed customers (0: none)")
    args = parser.parse_args(argv)
    app = create_app(portal_url=args.portal_url, scheme=args.scheme)
    if args.pay_every > 0:
        loan_book = os.environ.get(f"{ENV_PREFIX}_LOAN_BOOK_URL")
        start_demo_payments(
            app.extensions["payments_sandbox"],
            (lambda: payers_from_database(loan_book)) if loan_book
            else (lambda: seed_payers(args.customers, args.products)), args.pay_every)
    serve(app, args.host, args.port)


if __name__ == "__main__":
    main()
