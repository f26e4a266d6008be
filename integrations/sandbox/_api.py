"""What the W4 and LOS simulators share: a keyset-paginated JSON collection with an
``updated_since`` cursor, authentication, and fault knobs settable at runtime.

Endpoints of every simulator app:

- ``GET <collection>?limit=&cursor=|updated_since=`` — a page (authenticated)
- ``GET <collection>/<key>`` — one record (authenticated)
- ``GET <customer_path>`` (e.g. ``/api/v1/clients/<cif>/cards``) — every record of one customer,
  ``{"data": [...], "total": n}``, 404 when the system has none (authenticated)
- ``GET /health`` — liveness, never faulty
- ``GET /_sandbox/faults``, ``PUT /_sandbox/faults`` (JSON, partial) — the fault knobs
- ``POST /_sandbox/touch`` ``{"count": n}`` — n records change now (for incremental syncs)
- ``POST /_sandbox/reset`` — knobs off, data back to the start

The ``/_sandbox`` endpoints have no authentication: simulators listen on 127.0.0.1 only and are
never part of production.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import hmac
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta

from flask import Flask, Response, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from portal import clock as portal_clock
from portal.logging import configure_logging

MAX_LIMIT = 1000
DEFAULT_LIMIT = 200
TS_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def stable_hash(*parts) -> int:
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Faults:
    latency_ms: int = 0  # added to every API request
    error_rate: float = 0.0  # share of API requests answered 500
    outage: bool = False  # every API request answered 503
    outage_after: int | None = None  # API requests served before an outage starts by itself
    malformed_rate: float = 0.0  # share of records served broken (the same ones every time)
    duplicates: bool = False  # each page repeats the previous page's last record

    @classmethod
    def from_env(cls, prefix: str) -> Faults:
        """Knobs from the environment: ``<PREFIX>_LATENCY_MS``, ``_ERROR_RATE``, ``_OUTAGE``,
        ``_OUTAGE_AFTER``, ``_MALFORMED_RATE``, ``_DUPLICATES``."""
        faults = cls()
        for f in fields(cls):
            raw = os.environ.get(f"{prefix}_{f.name.upper()}")
            if raw is not None:
                faults.update({f.name: raw})
        return faults

    def update(self, values: dict) -> None:
        """Set knobs from JSON or text values; raises ValueError on a bad one."""
        known = {f.name for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault knob {name!r}")
            if name in ("outage", "duplicates"):
                value = value if isinstance(value, bool) else str(value).lower() in (
                    "1", "true", "yes", "on")
            elif name in ("latency_ms", "outage_after"):
                value = None if value in (None, "") and name == "outage_after" else int(value)
                if value is not None and value < 0:
                    raise ValueError(f"{name} must not be negative")
            else:
                value = float(value)
                if not 0 <= value <= 1:
                    raise ValueError(f"{name} must be between 0 and 1")
            setattr(self, name, value)


class Collection:
    """Records ordered by (updated_at, key), answering keyset pages."""

    def __init__(self, records: Iterable[dict], key: str):
        self.key = key
        self._records: dict[str, dict] = {}
        self._updated: dict[str, datetime] = {}
        self._order: list[tuple[datetime, str]] = []
        for record in records:
            updated_at = record.pop("_updated_at")
            self._records[record[key]] = record
            self._updated[record[key]] = updated_at
        self._resort()

    def _resort(self) -> None:
        self._order = sorted((ts, k) for k, ts in self._updated.items())

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict | None:
        record = self._records.get(key)
        return None if record is None else {**record, "updated_at": iso(self._updated[key])}

    def of_customer(self, field: str, value: str) -> list[dict]:
        """Every record whose ``field`` is ``value``, in key order."""
        return [self.get(k) for k in sorted(self._records)
                if self._records[k].get(field) == value]

    def page(self, after: tuple[datetime, str] | None, since: datetime | None,
             limit: int) -> tuple[list[dict], int, tuple[datetime, str] | None, bool]:
        """(records, how many from this position to the end, position after the page, more?)"""
        if after is not None:
            start = bisect.bisect_right(self._order, after)
        elif since is not None:
            start = bisect.bisect_left(self._order, (since, ""))
        else:
            start = 0
        chunk = self._order[start:start + limit]
        items = [self.get(k) for _, k in chunk]
        position = chunk[-1] if chunk else after
        return items, len(self._order) - start, position, start + limit < len(self._order)

    def touch(self, count: int, now: datetime, mutate: Callable[[dict, int, datetime], None],
              round_no: int) -> list[str]:
        """``count`` records change now (chosen deterministically per round)."""
        keys = sorted(self._records, key=lambda k: stable_hash("touch", round_no, k))[:count]
        for i, key in enumerate(keys):
            mutate(self._records[key], stable_hash("mutate", round_no, key), now)
            self._updated[key] = now + timedelta(microseconds=i)
        self._resort()
        return keys


def encode_cursor(position: tuple[datetime, str] | None) -> str | None:
    if position is None:
        return None
    return f"{position[0].astimezone(UTC).strftime(TS_FORMAT)}|{position[1]}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    stamp, sep, key = cursor.partition("|")
    if not sep or not key:
        raise ValueError("malformed cursor")
    return datetime.strptime(stamp, TS_FORMAT).replace(tzinfo=UTC), key


def parse_since(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def spread_updated_at(key: str, base: datetime, days: int = 30) -> datetime:
    """A deterministic 'last changed' time within ``days`` before ``base``."""
    return base - timedelta(seconds=stable_hash("updated", key) % (days * 86400))


def error(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class SandboxState:
    def __init__(self, build: Callable[[], Collection], faults: Faults, seed: int):
        self._build = build
        self.collection = build()
        self.faults = faults
        self.initial_faults = asdict(faults)
        self.rng = random.Random(seed)
        self.seed = seed
        self.lock = threading.Lock()
        self.served = 0  # API requests answered (any status)
        self.touch_rounds = 0
        self.last_page_tail: dict | None = None


def collection_builder(records: Iterable[dict] | Callable[[], Iterable[dict]] | None,
                       default: Callable[[], Iterable[dict]], key: str, *,
                       clock: Callable[[], datetime] = portal_clock.now,
                       ) -> Callable[[], Collection]:
    """``build`` for ``create_api_app``: the given records (or a callable making them), else
    ``default()``, each stamped with a deterministic ``_updated_at`` within the 30 days before
    ``clock()``'s day."""

    def build() -> Collection:
        base = clock().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        source = records() if callable(records) else records
        rows = default() if source is None else source
        items = []
        for record in rows:
            record = dict(record)
            record["_updated_at"] = spread_updated_at(record[key], base)
            items.append(record)
        return Collection(items, key)

    return build


def api_key_check(expected: str) -> Callable[[], str | None]:
    """An ``authenticate`` for :func:`fault_gate`: the request's X-API-Key must be ``expected``."""

    def check() -> str | None:
        given = request.headers.get("X-API-Key", "")
        if given and hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return "X-API-Key is missing or wrong"

    return check


def fault_gate(state, name: str, authenticate: Callable[[], str | None]
               ) -> Callable[[], Response | None]:
    """What a twin does before answering an API request: its latency, its outage (also after
    ``outage_after`` requests), the caller's credentials (``authenticate`` returns None or the
    401's message) and its injected error rate. ``state`` has ``faults``, ``lock``, ``rng`` and
    ``served``. The gate returns None (go on) or the error response."""

    def gate() -> Response | None:
        faults = state.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        with state.lock:
            state.served += 1
            if faults.outage_after is not None and state.served > faults.outage_after:
                faults.outage = True
            outage = faults.outage
            fail = faults.error_rate > 0 and state.rng.random() < faults.error_rate
        if outage:
            return error(503, "service_unavailable", f"{name} is down for maintenance",
                         {"Retry-After": "1"})
        problem = authenticate()
        if problem:
            return error(401, "unauthorized", problem,
                         {"WWW-Authenticate": "Bearer" if "Bearer" in problem else "ApiKey"})
        if fail:
            return error(500, "internal_error", f"{name} failed to answer (injected fault)")
        return None

    return gate


def create_api_app(*, name: str, collection_path: str, build: Callable[[], Collection],
                   authenticate: Callable[[], str | None], malform: Callable[[dict, int], dict],
                   mutate: Callable[[dict, int, datetime], None], faults: Faults | None = None,
                   seed: int = 0, clock: Callable[[], datetime] = portal_clock.now,
                   customer_path: str | None = None, customer_field: str | None = None) -> Flask:
    """``authenticate`` returns None when the request may pass, else an error message (401).
    ``clock`` dates what the twin changes (``/_sandbox/touch``). ``customer_path`` (with a
    ``<cif>`` part) serves one customer's records: those whose ``customer_field`` is the cif."""
    app = Flask(name)
    state = SandboxState(build, faults or Faults(), seed)
    app.extensions["sandbox"] = state

    api_gate = fault_gate(state, name, authenticate)

    def served_record(record: dict) -> dict:
        rate = state.faults.malformed_rate
        h = stable_hash("malformed", record.get(state.collection.key))
        if rate > 0 and h % 1_000_000 < rate * 1_000_000:
            return malform(dict(record), h)
        return record

    @app.get(collection_path)
    def list_records():
        refused = api_gate()
        if refused is not None:
            return refused
        try:
            limit = int(request.args.get("limit", DEFAULT_LIMIT))
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError
        except ValueError:
            return error(400, "bad_request", f"limit must be between 1 and {MAX_LIMIT}")
        after = since = None
        try:
            if request.args.get("cursor"):
                after = decode_cursor(request.args["cursor"])
            elif request.args.get("updated_since"):
                since = parse_since(request.args["updated_since"])
        except ValueError:
            return error(400, "bad_request", "cursor or updated_since is malformed")
        with state.lock:
            items, total, position, more = state.collection.page(after, since, limit)
            tail = state.last_page_tail
            if items:
                state.last_page_tail = items[-1]
        data = [served_record(r) for r in items]
        if state.faults.duplicates and tail is not None and after is not None:
            data.insert(0, served_record(tail))
        cursor = encode_cursor(position) or request.args.get("cursor")
        return jsonify({"data": data, "cursor": cursor, "next_cursor": cursor if more else None,
                        "total": total, "limit": limit})

    @app.get(f"{collection_path}/<key>")
    def get_record(key: str):
        refused = api_gate()
        if refused is not None:
            return refused
        with state.lock:
            record = state.collection.get(key)
        if record is None:
            return error(404, "not_found", f"no record {key!r}")
        return jsonify(served_record(record))

    if customer_path:
        @app.get(customer_path)
        def customer_records(cif: str):
            refused = api_gate()
            if refused is not None:
                return refused
            with state.lock:
                items = state.collection.of_customer(customer_field, cif)
            if not items:
                return error(404, "customer_not_found", f"no customer {cif!r}")
            return jsonify({"data": [served_record(r) for r in items], "total": len(items)})

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "system": name, "records": len(state.collection)})

    register_fault_routes(app, state)

    @app.post("/_sandbox/touch")
    def touch():
        body = request.get_json(silent=True) or {}
        try:
            count = int(body.get("count", 10))
        except (TypeError, ValueError):
            return error(400, "bad_request", "count must be a number")
        with state.lock:
            state.touch_rounds += 1
            keys = state.collection.touch(count, clock(), mutate, state.touch_rounds)
        return jsonify({"touched": keys})

    @app.post("/_sandbox/reset")
    def reset():
        with state.lock:
            state.faults.update(state.initial_faults)
            state.served = 0
            state.touch_rounds = 0
            state.last_page_tail = None
            state.rng = random.Random(state.seed)
            state.collection = state._build()
        return jsonify({"reset": True, "records": len(state.collection)})

    return app


def run_parser(prog: str, default_port: int, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--customers", type=int, default=2000,
                        help="size of the seed portfolio served (as seed-demo's --customers)")
    parser.add_argument("--products", type=int, default=3000)
    parser.add_argument("--latency-ms", type=int)
    parser.add_argument("--error-rate", type=float)
    parser.add_argument("--outage", action="store_true", default=None)
    parser.add_argument("--malformed-rate", type=float)
    return parser


def apply_cli_faults(faults: Faults, args: argparse.Namespace) -> Faults:
    faults.update({k: v for k, v in (("latency_ms", args.latency_ms),
                                      ("error_rate", args.error_rate),
                                      ("outage", args.outage),
                                      ("malformed_rate", args.malformed_rate)) if v is not None})
    return faults


def serve(app: Flask, host: str, port: int) -> None:
    # every line carries its level: `make run` shows warnings and errors, and keeps the access
    # lines (INFO) in the simulator's log file
    configure_logging("text", os.environ.get("LOG_LEVEL", "INFO"))
    server = make_server(host, port, app, threaded=True)
    print(f"{app.name} sandbox listening on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class ServerThread:
    """A simulator app served on 127.0.0.1 from a background thread (tests, demos)::

        with ServerThread(app) as server:
            W4Client(server.url, key) ...
    """

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0):
        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass

        self.app = app
        self._server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"sandbox-{app.name}")

    @property
    def state(self) -> SandboxState:
        return self.app.extensions["sandbox"]

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def register_fault_routes(app, state) -> None:
    """``GET/PUT /_sandbox/faults``: read and turn the fault knobs of a simulator whose
    ``state`` has ``faults`` (with ``update``), ``served`` and ``lock``."""

    @app.get("/_sandbox/faults")
    def get_faults():
        return jsonify({**asdict(state.faults), "served": state.served})

    @app.put("/_sandbox/faults")
    def put_faults():
        values = request.get_json(silent=True)
        if not isinstance(values, dict):
            return error(400, "bad_request", "send a JSON object of knobs")
        with state.lock:
            try:
                state.faults.update(values)
            except (TypeError, ValueError) as exc:
                return error(400, "bad_request", str(exc))
            if "outage_after" in values:
                state.served = 0
        return jsonify(asdict(state.faults))
