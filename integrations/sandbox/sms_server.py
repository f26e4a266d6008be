"""Sandbox twin of the SMS gateway: accepts messages, delivers them after a delay (or fails
some), and posts signed delivery reports to the portal (docs/integrations.md, "SMS gateway").

API (``X-API-Key``):

- ``POST /api/v1/messages`` ``{"to", "text", "reference", "callback_url"}`` → 202
  ``{"id", "status": "accepted", "segments", "encoding"}``; the same ``reference`` again
  answers the first id (nothing sent twice). 400 a missing/invalid ``to`` or ``text``.
- ``GET /api/v1/messages/<id>`` → the message and its status (accepted, delivered, failed)

Sandbox controls (no authentication; 127.0.0.1 only):

- ``GET/PUT /_sandbox/faults`` — ``latency_ms``, ``error_rate`` (share answered 500),
  ``outage`` (every request 503), ``outage_after``; and the gateway's own knobs
  ``delivery_delay_s`` (seconds before the report), ``undelivered_rate`` (share reported failed)
- ``GET /_sandbox/messages`` — what it accepted, with the report each got
- ``POST /_sandbox/reset``

Delivery reports are signed as Standard Webhooks (``webhook-id`` ``msg_<report id>``) or with
``--scheme crm-hmac``; secret ``SMS_SANDBOX_SECRET`` (default ``whsec_c2FuZGJveC1zbXMtc2VjcmV0``,
``sandbox-sms-secret`` for crm-hmac). Reports go to the message's ``callback_url``, else to
``PORTAL_URL`` + ``/api/v1/sms/delivery-reports``. Environment: ``SMS_SANDBOX_API_KEY``
(``sandbox-sms-key``), ``SMS_SANDBOX_LATENCY_MS``, ``_ERROR_RATE``, ``_OUTAGE``,
``SMS_SANDBOX_DELIVERY_DELAY_S`` (2), ``SMS_SANDBOX_UNDELIVERED_RATE`` (0.05).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from dataclasses import asdict

import requests
from flask import Flask, jsonify, request

from integrations.sandbox._api import (
    Faults,
    api_key_check,
    error,
    fault_gate,
    iso,
    run_parser,
    serve,
)
from integrations.sms.segments import sms_segments
from portal import clock as portal_clock
from portal.signing import CRM_HMAC, SCHEMES, STANDARD, signed_headers

NAME = "SMS gateway"
SYSTEM = "SMS"
DEFAULT_PORT = 8707
ENV_PREFIX = "SMS_SANDBOX"
DEFAULT_API_KEY = "sandbox-sms-key"
DEFAULT_SECRETS = {STANDARD: "whsec_c2FuZGJveC1zbXMtc2VjcmV0", CRM_HMAC: "sandbox-sms-secret"}
REPORTS_PATH = "/api/v1/sms/delivery-reports"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
log = logging.getLogger(__name__)


class Gateway:
    """The gateway's messages and its report sender (thread-safe)."""

    def __init__(self, *, api_key: str, secret: str, scheme: str, portal_url: str | None,
                 faults: Faults, delivery_delay: float = 2.0, undelivered_rate: float = 0.05,
                 seed: int = 23):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}")
        self.api_key = api_key
        self.secret = secret
        self.scheme = scheme
        self.portal_url = portal_url.rstrip("/") if portal_url else None
        self.faults = faults
        self.initial = (asdict(faults), delivery_delay, undelivered_rate)
        self.delivery_delay = delivery_delay
        self.undelivered_rate = undelivered_rate
        self.lock = threading.RLock()
        self.http = requests.Session()
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages: dict[str, dict] = {}
            self.by_reference: dict[str, str] = {}
            self.sequence = itertools.count(1)
            self.rng = random.Random(self.seed)
            self.served = 0
            self.reports_sent = 0
            self.reports_failed = 0

    def accept(self, to: str, text: str, reference: str | None,
               callback_url: str | None) -> tuple[dict, bool]:
        """(the message, whether it is new)."""

        with self.lock:
            if reference and reference in self.by_reference:
                return self.messages[self.by_reference[reference]], False
            provider_id = f"SMS{next(self.sequence):08d}-{uuid.uuid4().hex[:6]}"
            encoding, segments, _ = sms_segments(text)
            fail = self.undelivered_rate > 0 and self.rng.random() < self.undelivered_rate
            message = {"id": provider_id, "to": to, "text": text, "reference": reference,
                       "status": "accepted", "segments": segments, "encoding": encoding,
                       "accepted_at": iso(portal_clock.running_now()),
                       "callback_url": callback_url, "outcome": "failed" if fail else "delivered",
                       "report": None}
            self.messages[provider_id] = message
            if reference:
                self.by_reference[reference] = provider_id
            delay = self.delivery_delay
        timer = threading.Timer(delay, self.report, args=(provider_id,))
        timer.daemon = True
        timer.start()
        return message, True

    def report(self, provider_id: str) -> dict | None:
        """Post the message's delivery report (a few quick retries); the portal's answer."""
        with self.lock:
            message = self.messages.get(provider_id)
            if message is None:
                return None
            message["status"] = message["outcome"]
            report_id = uuid.uuid4().hex
            payload = {"id": provider_id, "reference": message["reference"],
                       "status": message["outcome"],
                       "error": ({"code": "UNDELIVERABLE", "message": "handset unreachable"}
                                 if message["outcome"] == "failed" else None),
                       "occurred_at": iso(portal_clock.running_now())}
            url = message["callback_url"] or (self.portal_url + REPORTS_PATH
                                              if self.portal_url else None)
        if not url:
            return None
        body = json.dumps(payload).encode()
        for attempt in range(3):
            try:
                headers = signed_headers(self.secret, body, scheme=self.scheme,
                                         message_id=f"msg_{report_id}")
                response = self.http.post(url, data=body, headers=headers, timeout=10)
                if response.status_code < 500:
                    with self.lock:
                        message["report"] = response.status_code
                        self.reports_sent += 1
                    return response.json() if response.content else {}
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2 * (attempt + 1))
        with self.lock:
            self.reports_failed += 1
        log.warning("delivery report not delivered", extra={"provider_id": provider_id})
        return None


def create_app(*, faults: Faults | None = None, api_key: str | None = None,
               secret: str | None = None, scheme: str | None = None,
               portal_url: str | None = None, delivery_delay: float | None = None,
               undelivered_rate: float | None = None) -> Flask:
    scheme = scheme or os.environ.get(f"{ENV_PREFIX}_SCHEME") or STANDARD
    gateway = Gateway(
        api_key=api_key or os.environ.get(f"{ENV_PREFIX}_API_KEY") or DEFAULT_API_KEY,
        secret=secret or os.environ.get(f"{ENV_PREFIX}_SECRET") or DEFAULT_SECRETS[scheme],
        scheme=scheme,
        portal_url=portal_url if portal_url is not None else os.environ.get("PORTAL_URL"),
        faults=faults or Faults.from_env(ENV_PREFIX),
        delivery_delay=float(delivery_delay if delivery_delay is not None else
                             os.environ.get(f"{ENV_PREFIX}_DELIVERY_DELAY_S", "2")),
        undelivered_rate=float(undelivered_rate if undelivered_rate is not None else
                               os.environ.get(f"{ENV_PREFIX}_UNDELIVERED_RATE", "0.05")))
    app = Flask("sms_gateway")
    app.extensions["sandbox"] = gateway

    gate = fault_gate(gateway, 'the SMS gateway', api_key_check(gateway.api_key))

    @app.post("/api/v1/messages")
    def send():
        refused = gate()
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, "bad_request", "send a JSON object")
        to, text = body.get("to"), body.get("text")
        if not isinstance(to, str) or not E164.match(to):
            return error(400, "invalid_number", "to must be an E.164 number (+84…)")
        if not isinstance(text, str) or not text.strip() or len(text) > 1600:
            return error(400, "invalid_text", "text must be 1 to 1600 characters")
        reference = body.get("reference")
        callback = body.get("callback_url")
        message, new = gateway.accept(to, text, str(reference) if reference else None,
                                      str(callback) if callback else None)
        return jsonify({"id": message["id"], "status": "accepted",
                        "segments": message["segments"], "encoding": message["encoding"],
                        "duplicate": not new}), 202

    @app.get("/api/v1/messages/<provider_id>")
    def status(provider_id: str):
        refused = gate()
        if refused is not None:
            return refused
        message = gateway.messages.get(provider_id)
        if message is None:
            return error(404, "not_found", f"no message {provider_id!r}")
        return jsonify({k: v for k, v in message.items() if k != "outcome"})

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "system": SYSTEM, "name": NAME})

    @app.get("/_sandbox/messages")
    def messages():
        with gateway.lock:
            return jsonify({"data": list(gateway.messages.values()),
                            "reports_sent": gateway.reports_sent,
                            "reports_failed": gateway.reports_failed})

    @app.get("/_sandbox/faults")
    def get_faults():
        return jsonify({**asdict(gateway.faults), "delivery_delay_s": gateway.delivery_delay,
                        "undelivered_rate": gateway.undelivered_rate,
                        "served": gateway.served})

    @app.put("/_sandbox/faults")
    def put_faults():
        values = request.get_json(silent=True)
        if not isinstance(values, dict):
            return error(400, "bad_request", "send a JSON object of knobs")
        values = dict(values)
        try:
            with gateway.lock:
                if "delivery_delay_s" in values:
                    gateway.delivery_delay = max(0.0, float(values.pop("delivery_delay_s")))
                if "undelivered_rate" in values:
                    rate = float(values.pop("undelivered_rate"))
                    if not 0 <= rate <= 1:
                        raise ValueError("undelivered_rate must be between 0 and 1")
                    gateway.undelivered_rate = rate
                gateway.faults.update(values)
                if "outage_after" in values:
                    gateway.served = 0
        except (TypeError, ValueError) as exc:
            return error(400, "bad_request", str(exc))
        return get_faults()

    @app.post("/_sandbox/reset")
    def reset():
        faults, delay, rate = gateway.initial
        gateway.faults.update(faults)
        gateway.delivery_delay, gateway.undelivered_rate = delay, rate
        gateway.reset()
        return jsonify({"reset": True})

    return app


def main(argv: list[str] | None = None) -> None:
    parser = run_parser("sms_server", DEFAULT_PORT, __doc__.splitlines()[0])
    parser.add_argument("--scheme", choices=SCHEMES, default=None,
                        help="how delivery reports are signed (default: standard)")
    args = parser.parse_args(argv)
    faults = Faults.from_env(ENV_PREFIX)
    for name, value in (("latency_ms", args.latency_ms), ("error_rate", args.error_rate),
                        ("outage", args.outage)):
        if value is not None:
            faults.update({name: value})
    serve(create_app(faults=faults, scheme=args.scheme), args.host, args.port)


if __name__ == "__main__":
    main()
