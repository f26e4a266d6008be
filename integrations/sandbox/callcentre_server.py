"""Sandbox twin of the call centre (CTI): agents, a dial API, a status API, a call-list API, and a
traffic generator that posts signed CTI events to the portal (docs/integrations.md, "Call
centre").

API (``X-API-Key``; fault knobs of integrations/sandbox/_api.py apply):

- ``GET  /api/v1/agents`` · ``PUT /api/v1/agents/<agent_id>/status`` ``{"status"}``
- ``POST /api/v1/calls`` ``{"agent_id", "phone", "reference"}`` → 202 ``{"call_id"}``; the call
  then rings, is answered and ends by itself, each step posted as an event
- ``POST /api/v1/calls/<call_id>/hangup`` · ``GET /api/v1/calls?date=YYYY-MM-DD&limit&cursor``

Sandbox controls (no authentication; 127.0.0.1 only):

- ``POST /_sandbox/agents/<agent_id>/status`` ``{"status"}`` — the call centre changes an agent
  (an ``agent.status_changed`` event is posted)
- ``POST /_sandbox/simulate`` ``{"agents": [...], "phones": [...], "minutes": 60, "seed": 1,
  "unknown_rate": 0.05, "duplicate_rate": 0, "shuffle": false}`` — a working period, played now
  at full speed: every event posted, the generated calls returned (what the portal must hold)
- ``GET/PUT /_sandbox/faults``, ``GET /_sandbox/events`` (counts), ``POST /_sandbox/reset``

Events are signed in the ``crm-hmac`` scheme (``X-Timestamp`` / ``X-Signature``) or, with
``--scheme standard`` (env ``CALLCENTRE_SANDBOX_SCHEME``), as Standard Webhooks (``webhook-id``
``msg_<event_id>``, the same for every retry and duplicate of an event; ``webhook-timestamp``,
``webhook-signature``).

Environment: ``PORTAL_URL`` (where events go), ``CALLCENTRE_SANDBOX_SECRET`` (signing secret,
default ``sandbox-cti-secret``; ``whsec_c2FuZGJveC1jdGktc2VjcmV0`` in the standard scheme),
``CALLCENTRE_SANDBOX_API_KEY`` (``sandbox-cc-key``),
``CALLCENTRE_SANDBOX_AGENTS`` (18: CTI-1001…), ``CALLCENTRE_SANDBOX_TRAFFIC`` (live traffic of a
working day; on by default when PORTAL_URL is set), ``CALLCENTRE_SANDBOX_RING_SECONDS`` /
``_TALK_SECONDS`` / ``_WRAP_SECONDS`` (a dialled call's timing), ``CALLCENTRE_SANDBOX_LATENCY_MS``,
``_ERROR_RATE``, ``_OUTAGE``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

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
from integrations.sandbox.t24_files import SeedSource
from portal import clock as portal_clock
from portal.signing import CRM_HMAC, SCHEMES, STANDARD, signed_headers

NAME = "Call centre"
SYSTEM = "CTI"  # as in portal.models.enums.INTEGRATIONS
DEFAULT_PORT = 8704
ENV_PREFIX = "CALLCENTRE_SANDBOX"
DEFAULT_API_KEY = "sandbox-cc-key"
DEFAULT_SECRET = "sandbox-cti-secret"
DEFAULT_STANDARD_SECRET = "whsec_c2FuZGJveC1jdGktc2VjcmV0"  # base64 of the one above
DEFAULT_SECRETS = {CRM_HMAC: DEFAULT_SECRET, STANDARD: DEFAULT_STANDARD_SECRET}
EVENTS_PATH = "/api/v1/cti/events"
STATUSES = ("available", "on_call", "wrap_up", "break", "offline")
log = logging.getLogger(__name__)


def default_agents(count: int = 18, first: int = 1001) -> list[dict]:
    """The demo's call agents (portal/seed/demo.py: extension 1001…, agent id CTI-1001…)."""
    return [{"agent_id": f"CTI-{n}", "extension": str(n)} for n in range(first, first + count)]


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on")


class CallCentre:
    """The call centre's state and its event sender (thread-safe)."""

    def __init__(self, *, agents: list[dict], portal_url: str | None, secret: str,
                 api_key: str, faults: Faults, ring: float = 2.0, talk: float = 4.0,
                 wrap: float = 2.0, bank_tz: str = "Asia/Ho_Chi_Minh",
                 clock: Callable[[], datetime] = portal_clock.running_now,
                 scheme: str = CRM_HMAC):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}")
        self.clock = clock  # stamps calls and status changes (the product's clock)
        self.lock = threading.RLock()
        self.portal_url = portal_url.rstrip("/") if portal_url else None
        self.secret = secret
        self.scheme = scheme
        self.api_key = api_key
        self.faults = faults
        self.initial_faults = asdict(faults)
        self.timing = {"ring": ring, "talk": talk, "wrap": wrap}
        self.zone = ZoneInfo(bank_tz)
        self.http = requests.Session()
        self.sent = 0
        self.failed = 0
        self.served = 0
        self.rng = random.Random(7)
        self.traffic_stop = threading.Event()
        self.phones: list[str] = []
        self.reset(agents)

    def reset(self, agents: list[dict] | None = None) -> None:
        with self.lock:
            now = self.clock()
            source = agents if agents is not None else list(self.agents.values())
            self.agents = {a["agent_id"]: {"agent_id": a["agent_id"],
                                           "extension": a.get("extension"),
                                           "status": a.get("status", "offline"),
                                           "since": now} for a in source}
            self.calls: dict[str, dict] = {}
            self.hung_up: set[str] = set()
            self.sequence = itertools.count(1)

    # -- events --------------------------------------------------------------------------------
    def emit(self, kind: str, data: dict, at: datetime, event_id: str | None = None) -> bool:
        """Post one signed event to the portal (a few quick retries); False when it failed."""
        return self.post(kind, data, at, event_id) is not None

    def post(self, kind: str, data: dict, at: datetime,
             event_id: str | None = None) -> dict | None:
        """Post one signed event; the portal's answer, or None when it failed."""
        event_id = event_id or uuid.uuid4().hex
        body = json.dumps({"event_id": event_id, "type": kind,
                           "occurred_at": iso(at), "data": data}).encode()
        if not self.portal_url:
            return None

        for attempt in range(3):
            try:
                headers = signed_headers(self.secret, body, scheme=self.scheme,
                                         message_id=f"msg_{event_id}")
                response = self.http.post(self.portal_url + EVENTS_PATH, data=body,
                                          headers=headers, timeout=10)
                if response.status_code < 500:
                    with self.lock:
                        self.sent += 1
                    if response.status_code >= 400:
                        log.warning("portal refused %s: %s", kind, response.text[:200])
                        return None
                    try:
                        return response.json()
                    except ValueError:
                        return {}
            except requests.RequestException:
                pass
            time.sleep(0.2 * (attempt + 1))
        with self.lock:
            self.failed += 1
        return None

    def set_status(self, agent_id: str, status: str, at: datetime | None = None, *,
                   emit: bool = True, reason: str | None = None) -> dict:
        at = at or self.clock()
        with self.lock:
            agent = self.agents[agent_id]
            agent["status"], agent["since"] = status, at
        if emit:
            self.emit("agent.status_changed",
                      {"agent_id": agent_id, "extension": agent["extension"], "status": status,
                       "reason": reason}, at)
        return self.agent_json(agent_id)

    def agent_json(self, agent_id: str) -> dict:
        agent = self.agents[agent_id]
        return {**agent, "since": iso(agent["since"])}

    # -- calls ---------------------------------------------------------------------------------
    def new_call_id(self) -> str:
        return f"SBX-{uuid.uuid4().hex[:8]}-{next(self.sequence):05d}"

    def call_data(self, call: dict, *, final: bool = False) -> dict:
        data = {"call_id": call["call_id"], "direction": call["direction"],
                "agent_id": call["agent_id"], "extension": call.get("extension"),
                "phone": call["phone"], "started_at": iso(call["started_at"])}
        if call.get("answered_at"):
            data["answered_at"] = iso(call["answered_at"])
        if final:
            data.update({"ended_at": iso(call["ended_at"]),
                         "duration_seconds": call["duration_seconds"],
                         "disposition": call["disposition"],
                         "recording_ref": call.get("recording_ref")})
        return data

    def store(self, call: dict) -> None:
        with self.lock:
            self.calls[call["call_id"]] = call

    def dial(self, agent_id: str, phone: str, reference: str | None) -> dict:
        agent = self.agents[agent_id]
        call = {"call_id": self.new_call_id(), "agent_id": agent_id,
                "extension": agent["extension"], "phone": phone, "direction": "outbound",
                "reference": reference, "started_at": self.clock(), "answered_at": None,
                "ended_at": None, "duration_seconds": None, "disposition": None}
        self.store(call)
        threading.Thread(target=self._play_dialled, args=(call,), daemon=True,
                         name=f"call-{call['call_id']}").start()
        return call

    def _play_dialled(self, call: dict) -> None:
        """A dialled call in real time: ring, answer, talk, end (or a hang-up), wrap-up."""
        agent_id = call["agent_id"]
        self.emit("call.started", self.call_data(call), call["started_at"])
        self.set_status(agent_id, "on_call")
        self._wait(call, self.timing["ring"])
        if call["call_id"] not in self.hung_up:
            call["answered_at"] = self.clock()
            self.emit("call.answered", self.call_data(call), call["answered_at"])
            self._wait(call, self.timing["talk"])
        self.finish(call)

    def _wait(self, call: dict, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and call["call_id"] not in self.hung_up:
            time.sleep(0.05)

    def finish(self, call: dict) -> None:
        with self.lock:
            if call.get("ended_at"):
                return
            call["ended_at"] = self.clock()
        answered = call.get("answered_at")
        call["duration_seconds"] = int((call["ended_at"] - answered).total_seconds()) \
            if answered else 0
        call["disposition"] = "ANSWERED" if answered else "NO_ANSWER"
        call["recording_ref"] = f"rec/{call['call_id']}.mp3" if answered else None
        self.emit("call.ended", self.call_data(call, final=True), call["ended_at"])
        self.set_status(call["agent_id"], "wrap_up")
        threading.Timer(self.timing["wrap"], self._after_wrap, args=(call["agent_id"],)).start()

    def _after_wrap(self, agent_id: str) -> None:
        if self.agents[agent_id]["status"] == "wrap_up":
            self.set_status(agent_id, "available")

    def hangup(self, call_id: str) -> dict | None:
        call = self.calls.get(call_id)
        if call is None:
            return None
        self.hung_up.add(call_id)
        return call

    def calls_of_day(self, day) -> list[dict]:
        with self.lock:
            calls = [c for c in self.calls.values()
                     if c.get("ended_at") and c["started_at"].astimezone(self.zone).date() == day]
        calls.sort(key=lambda c: (c["started_at"], c["call_id"]))
        return [self.call_data(c, final=True) for c in calls]

    # -- a working period at full speed -----------------------------------------------------------
    def simulate(self, *, agents: list[str], phones: list[str], minutes: int = 60,
                 seed: int = 1, unknown_rate: float = 0.05, duplicate_rate: float = 0.0,
                 shuffle: bool = False, end: datetime | None = None,
                 workers: int = 4) -> dict:
        """Generate ``minutes`` of calls for ``agents`` ending at ``end`` (now), post every
        event, and return the calls (the portal must then hold exactly these)."""
        rng = random.Random(seed)
        end = end or self.clock() - timedelta(seconds=5)
        start = end - timedelta(minutes=minutes)
        calls: list[dict] = []
        events: list[tuple[str, dict, datetime]] = []
        final_status: dict[str, str] = {}
        for agent_id in agents:
            agent = self.agents.setdefault(agent_id, {"agent_id": agent_id, "extension": None,
                                                      "status": "offline", "since": start})
            t = start + timedelta(seconds=rng.randint(0, 90))
            events.append(("agent.status_changed", {"agent_id": agent_id, "status": "available",
                                                    "reason": "shift start"}, t))
            status = "available"
            while True:
                if rng.random() < 0.06:  # a break
                    length = timedelta(minutes=rng.randint(5, 12))
                    if t + length >= end:
                        break
                    events.append(("agent.status_changed",
                                   {"agent_id": agent_id, "status": "break"}, t))
                    t += length
                    events.append(("agent.status_changed",
                                   {"agent_id": agent_id, "status": "available"}, t))
                    t += timedelta(seconds=rng.randint(1, 30))
                ring = rng.randint(5, 25)
                answered = rng.random() < 0.6
                talk = rng.randint(30, 360) if answered else 0
                wrap = rng.randint(10, 60)
                if t + timedelta(seconds=ring + talk + wrap + 1) >= end:
                    break
                unknown = rng.random() < unknown_rate or not phones
                phone = f"+8498{rng.randint(0, 9_999_999):07d}" if unknown else \
                    rng.choice(phones)
                call = {"call_id": self.new_call_id(), "agent_id": agent_id,
                        "extension": agent.get("extension"), "phone": phone,
                        "direction": "inbound" if rng.random() < 0.15 else "outbound",
                        "started_at": t, "answered_at": t + timedelta(seconds=ring)
                        if answered else None,
                        "ended_at": t + timedelta(seconds=ring + talk),
                        "duration_seconds": talk,
                        "disposition": "ANSWERED" if answered else
                        rng.choice(("NO_ANSWER", "BUSY", "NO_ANSWER")),
                        "unknown_number": unknown}
                call["recording_ref"] = f"rec/{call['call_id']}.mp3" if answered else None
                calls.append(call)
                self.store(call)
                events.append(("agent.status_changed",
                               {"agent_id": agent_id, "status": "on_call"}, t))
                events.append(("call.started", self.call_data(call), t))
                if answered:
                    events.append(("call.answered", self.call_data(call),
                                   call["answered_at"]))
                events.append(("call.ended", self.call_data(call, final=True),
                               call["ended_at"]))
                events.append(("agent.status_changed", {"agent_id": agent_id,
                                                        "status": "wrap_up"},
                               call["ended_at"]))
                t = call["ended_at"] + timedelta(seconds=wrap)
                events.append(("agent.status_changed",
                               {"agent_id": agent_id, "status": "available"}, t))
                status = "available"
                t += timedelta(seconds=rng.randint(5, 90))
            final_status[agent_id] = status
            agent["status"], agent["since"] = status, t
        # each event gets its id now: a duplicate is the same event sent again
        numbered = [(uuid.uuid4().hex, kind, data, at) for kind, data, at in events]
        batch = list(numbered)
        if duplicate_rate:
            batch += [e for e in numbered if rng.random() < duplicate_rate]
        if shuffle:
            rng.shuffle(batch)
        else:
            batch.sort(key=lambda e: e[3])
        failures = 0
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for ok in pool.map(lambda e: self.emit(e[1], e[2], e[3], event_id=e[0]), batch):
                failures += 0 if ok else 1
        return {
            "calls": [{**self.call_data(c, final=True), "unknown_number": c["unknown_number"]}
                      for c in calls],
            "events": len(numbered), "posted": len(batch), "failed": failures,
            "final_status": final_status, "start": iso(start), "end": iso(end),
        }

    # -- live traffic (demo) ------------------------------------------------------------------
    def run_traffic(self, tick: float = 1.0, seed: int = 11) -> None:
        """A working day in real time: idle agents take calls, some take breaks."""
        rng = random.Random(seed)
        if not self.phones:
            self.phones = demo_phones(getattr(self, "customers", None))
        for agent_id in list(self.agents):
            self.set_status(agent_id, "available", reason="shift start")
            time.sleep(0.05)
        while not self.traffic_stop.wait(tick):
            for agent_id, agent in list(self.agents.items()):
                status = agent["status"]
                idle = (self.clock() - agent["since"]).total_seconds()
                if status == "available" and idle > 3 and rng.random() < 0.12:
                    if rng.random() < 0.08:
                        self.set_status(agent_id, "break", reason="short break")
                    else:
                        phone = rng.choice(self.phones) if self.phones and \
                            rng.random() > 0.05 else f"+8498{rng.randint(0, 9_999_999):07d}"
                        self._live_call(agent_id, phone, rng)
                elif status == "break" and idle > rng.randint(60, 240):
                    self.set_status(agent_id, "available", reason="back from break")

    def _live_call(self, agent_id: str, phone: str, rng: random.Random) -> None:
        agent = self.agents[agent_id]
        call = {"call_id": self.new_call_id(), "agent_id": agent_id,
                "extension": agent["extension"], "phone": phone,
                "direction": "inbound" if rng.random() < 0.15 else "outbound",
                "started_at": self.clock(), "answered_at": None, "ended_at": None}
        self.store(call)
        self.set_status(agent_id, "on_call")
        answer = self.post("call.started", self.call_data(call), call["started_at"])
        if answer and answer.get("matched") is False and phone in self.phones:
            self.phones.remove(phone)  # not a customer of this portal: dial known numbers
        ring, talk = rng.uniform(3, 12), rng.uniform(15, 150)
        answered = rng.random() < 0.6

        def play() -> None:
            time.sleep(ring)
            if answered:
                call["answered_at"] = self.clock()
                self.emit("call.answered", self.call_data(call), call["answered_at"])
                time.sleep(talk)
            self.finish(call)

        threading.Thread(target=play, daemon=True).start()


def demo_phones(customers: int | None = None) -> list[str]:
    """Mobile numbers of the demo portfolio (the same generator as seed-demo)."""
    try:
        count = customers or int(os.environ.get("CALLCENTRE_SANDBOX_CUSTOMERS", "2000"))
        source = SeedSource(count, int(count * 1.5))
        return [row["number_e164"] for _, row in source.table_rows(("phones",))
                if row.get("number_e164") and row.get("cif")][:5000]
    except Exception:  # pragma: no cover - the demo still runs, with unknown numbers only
        log.exception("demo phones unavailable")
        return []


def create_app(*, agents: list[dict] | None = None, portal_url: str | None = None,
               secret: str | None = None, api_key: str | None = None,
               faults: Faults | None = None, traffic: bool | None = None,
               timing: dict | None = None, customers: int | None = None,
               scheme: str | None = None) -> Flask:
    app = Flask("callcentre_sandbox")
    scheme = scheme or os.environ.get(f"{ENV_PREFIX}_SCHEME") or CRM_HMAC
    count = int(os.environ.get(f"{ENV_PREFIX}_AGENTS", "18"))
    timing = timing or {}
    centre = CallCentre(
        agents=agents if agents is not None else default_agents(count),
        portal_url=portal_url if portal_url is not None else os.environ.get("PORTAL_URL"),
        secret=secret or os.environ.get(f"{ENV_PREFIX}_SECRET")
        or DEFAULT_SECRETS.get(scheme, DEFAULT_SECRET), scheme=scheme,
        api_key=api_key or os.environ.get(f"{ENV_PREFIX}_API_KEY", DEFAULT_API_KEY),
        faults=faults or Faults.from_env(ENV_PREFIX),
        ring=float(timing.get("ring", os.environ.get(f"{ENV_PREFIX}_RING_SECONDS", 2))),
        talk=float(timing.get("talk", os.environ.get(f"{ENV_PREFIX}_TALK_SECONDS", 4))),
        wrap=float(timing.get("wrap", os.environ.get(f"{ENV_PREFIX}_WRAP_SECONDS", 3))),
    )
    app.extensions["callcentre"] = centre
    centre.customers = customers
    if traffic is None:
        traffic = _env_bool(f"{ENV_PREFIX}_TRAFFIC", bool(centre.portal_url))
    if traffic and centre.portal_url:
        threading.Thread(target=centre.run_traffic, daemon=True, name="cti-traffic").start()

    gate = fault_gate(centre, 'the call centre', api_key_check(centre.api_key))

    def known_agent(agent_id: str):
        if agent_id in centre.agents:
            return agent_id
        for key, agent in centre.agents.items():
            if agent.get("extension") == agent_id:
                return key
        return None

    @app.get("/api/v1/agents")
    def list_agents():
        refused = gate()
        if refused is not None:
            return refused
        return jsonify({"data": [centre.agent_json(a) for a in sorted(centre.agents)]})

    @app.put("/api/v1/agents/<agent_id>/status")
    def put_status(agent_id: str):
        refused = gate()
        if refused is not None:
            return refused
        key = known_agent(agent_id)
        if key is None:
            return error(404, "unknown_agent", f"no agent {agent_id!r}")
        status = (request.get_json(silent=True) or {}).get("status")
        if status not in ("available", "break", "offline"):
            return error(400, "bad_status", "status must be available, break or offline")
        return jsonify(centre.set_status(key, status, emit=False))

    @app.post("/api/v1/calls")
    def dial():
        refused = gate()
        if refused is not None:
            return refused
        body = request.get_json(silent=True) or {}
        key = known_agent(str(body.get("agent_id") or ""))
        if key is None:
            return error(404, "unknown_agent", "agent_id is not a call-centre agent")
        if not body.get("phone"):
            return error(400, "bad_request", "phone is required")
        if centre.agents[key]["status"] == "on_call":
            return error(409, "agent_busy", "the agent is already on a call")
        call = centre.dial(key, str(body["phone"]), body.get("reference"))
        return jsonify({"call_id": call["call_id"], "status": "dialing"}), 202

    @app.post("/api/v1/calls/<call_id>/hangup")
    def hangup(call_id: str):
        refused = gate()
        if refused is not None:
            return refused
        call = centre.hangup(call_id)
        if call is None:
            return error(404, "not_found", f"no call {call_id!r}")
        return jsonify({"call_id": call_id, "status": "hanging_up"})

    @app.get("/api/v1/calls")
    def call_list():
        refused = gate()
        if refused is not None:
            return refused
        try:
            day = datetime.strptime(request.args.get("date", ""), "%Y-%m-%d").date()
            limit = int(request.args.get("limit", 200))
            offset = int(request.args.get("cursor") or 0)
            if not 1 <= limit <= 1000 or offset < 0:
                raise ValueError
        except ValueError:
            return error(400, "bad_request", "date=YYYY-MM-DD, limit 1..1000, cursor a number")
        calls = centre.calls_of_day(day)
        page = calls[offset:offset + limit]
        more = offset + limit < len(calls)
        cursor = str(offset + len(page))
        return jsonify({"data": page, "cursor": cursor, "next_cursor": cursor if more else None,
                        "total": len(calls) - offset, "limit": limit})

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "system": SYSTEM, "name": NAME,
                        "agents": len(centre.agents)})

    @app.post("/_sandbox/agents/<agent_id>/status")
    def sandbox_status(agent_id: str):
        key = known_agent(agent_id)
        status = (request.get_json(silent=True) or {}).get("status")
        if key is None or status not in STATUSES:
            return error(400, "bad_request", "known agent and a status are required")
        return jsonify(centre.set_status(key, status, reason="call centre"))

    @app.post("/_sandbox/simulate")
    def simulate():
        body = request.get_json(silent=True) or {}
        agents = [str(a) for a in body.get("agents") or list(centre.agents)]
        result = centre.simulate(
            agents=agents, phones=[str(p) for p in body.get("phones") or []],
            minutes=int(body.get("minutes", 60)), seed=int(body.get("seed", 1)),
            unknown_rate=float(body.get("unknown_rate", 0.05)),
            duplicate_rate=float(body.get("duplicate_rate", 0)),
            shuffle=bool(body.get("shuffle", False)), workers=int(body.get("workers", 4)))
        return jsonify(result)

    @app.get("/_sandbox/faults")
    def get_faults():
        return jsonify({**asdict(centre.faults), "served": centre.served})

    @app.put("/_sandbox/faults")
    def put_faults():
        values = request.get_json(silent=True)
        if not isinstance(values, dict):
            return error(400, "bad_request", "send a JSON object of knobs")
        try:
            centre.faults.update(values)
        except (TypeError, ValueError) as exc:
            return error(400, "bad_request", str(exc))
        return jsonify(asdict(centre.faults))

    @app.get("/_sandbox/events")
    def events():
        return jsonify({"sent": centre.sent, "failed": centre.failed,
                        "calls": len(centre.calls)})

    @app.post("/_sandbox/reset")
    def reset():
        centre.faults.update(centre.initial_faults)
        centre.reset()
        return jsonify({"reset": True})

    return app


def main(argv: list[str] | None = None) -> None:
    parser = run_parser("callcentre_server", DEFAULT_PORT, __doc__.splitlines()[0])
    parser.add_argument("--no-traffic", action="store_true",
                        help="no live traffic even when PORTAL_URL is set")
    parser.add_argument("--scheme", choices=SCHEMES, default=None,
                        help="how events are signed (default: $CALLCENTRE_SANDBOX_SCHEME or "
                             "crm-hmac)")
    args = parser.parse_args(argv)
    faults = Faults.from_env(ENV_PREFIX)
    for name, value in (("latency_ms", args.latency_ms), ("error_rate", args.error_rate),
                        ("outage", args.outage)):
        if value is not None:
            faults.update({name: value})
    app = create_app(faults=faults, traffic=False if args.no_traffic else None,
                     customers=args.customers, scheme=args.scheme)
    serve(app, args.host, args.port)


if __name__ == "__main__":
    main()
