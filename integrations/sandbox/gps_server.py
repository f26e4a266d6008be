"""Sandbox twin of the GPS tracking system (``X-API-Key``), with fault knobs.

- ``POST /api/v1/positions`` ``{"positions": [...]}`` — positions forwarded by the portal;
  duplicates (same portal ``id``) are counted, not stored twice; positions arriving with a
  smaller ``id`` than the last one are counted as out of order.
- ``GET /api/v1/positions?agent=&after_id=`` — what was received, in arrival order.
- ``POST /api/v1/verify`` — a visit check-in judged on the system's own track of the agent (the
  closest received position within 15 minutes of ``at``), else on the check-in point.
- ``GET /api/v1/agents/<agent>/route?date=YYYY-MM-DD`` — the agent's positions of a bank day.
- ``GET /health``; ``GET|PUT /_sandbox/faults``; ``POST /_sandbox/reset``; ``GET /_sandbox/stats``.

Knobs (env ``GPS_SANDBOX_LATENCY_MS``, ``_ERROR_RATE``, ``_OUTAGE``, ``_OUTAGE_AFTER``, or PUT
``/_sandbox/faults``). Run: ``python -m integrations.sandbox.gps_server --port 8705``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask, jsonify, request

from integrations.sandbox._api import (
    Faults,
    api_key_check,
    error,
    fault_gate,
    register_fault_routes,
    serve,
)
from portal import clock as portal_clock

NAME = "GPS"
DEFAULT_PORT = 8705
DEFAULT_API_KEY = "sandbox-gps-key"
ENV_PREFIX = "GPS_SANDBOX"
TRACK_WINDOW = timedelta(minutes=15)
MAX_ACCURACY_M = 100.0


def _distance_m(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


def _ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class GpsState:
    def __init__(self, faults: Faults, seed: int = 0):
        self.faults = faults
        self.initial_faults = asdict(faults)
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.seed = seed
        self.clear()

    def clear(self) -> None:
        self.positions: list[dict] = []  # arrival order
        self.by_agent: dict[str, list[dict]] = {}
        self.ids: set = set()
        self.duplicates = 0
        self.out_of_order = 0
        self.last_id = None
        self.served = 0
        self.batches = 0


def create_app(*, api_key: str | None = None, faults: Faults | None = None,
               bank_timezone: str = "Asia/Ho_Chi_Minh", seed: int = 0,
               clock: Callable[[], datetime] = portal_clock.running_now) -> Flask:
    api_key = api_key or os.environ.get("GPS_SANDBOX_API_KEY") or DEFAULT_API_KEY
    app = Flask(NAME)
    state = GpsState(faults or Faults.from_env(ENV_PREFIX), seed)
    app.extensions["sandbox"] = state
    zone = ZoneInfo(bank_timezone)

    gate = fault_gate(state, 'GPS', api_key_check(api_key))

    @app.post("/api/v1/positions")
    def receive_positions():
        refused = gate()
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        items = body.get("positions") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return error(400, "bad_request", "send {\"positions\": [...]}")
        for i, p in enumerate(items):
            if not isinstance(p, dict) or not {"id", "agent", "lat", "lon",
                                               "recorded_at"} <= p.keys():
                return error(400, "bad_request",
                             f"positions[{i}] needs id, agent, lat, lon, recorded_at")
        received = duplicates = 0
        with state.lock:
            state.batches += 1
            for p in items:
                if p["id"] in state.ids:
                    state.duplicates += 1
                    duplicates += 1
                    continue
                if state.last_id is not None and p["id"] < state.last_id:
                    state.out_of_order += 1
                state.last_id = p["id"]
                state.ids.add(p["id"])
                state.positions.append(p)
                state.by_agent.setdefault(str(p["agent"]), []).append(p)
                received += 1
        return jsonify({"received": received, "duplicates": duplicates})

    @app.get("/api/v1/positions")
    def list_positions():
        refused = gate()
        if refused is not None:
            return refused
        agent = request.args.get("agent")
        after = int(request.args.get("after_id", 0) or 0)
        with state.lock:
            items = state.by_agent.get(agent, []) if agent else state.positions
            data = [p for p in items if p["id"] > after][:5000]
        return jsonify({"data": data, "count": len(data)})

    @app.post("/api/v1/verify")
    def verify():
        refused = gate()
        if refused is not None:
            return refused
        body = request.get_json(silent=True) or {}
        try:
            lat, lon = float(body["lat"]), float(body["lon"])
            target = body["target"]
            t_lat, t_lon = float(target["lat"]), float(target["lon"])
            radius = float(body.get("radius_m") or 200)
            accuracy = body.get("accuracy_m")
            accuracy = None if accuracy is None else float(accuracy)
            at = _ts(body["at"]) if body.get("at") else clock()
        except (KeyError, TypeError, ValueError):
            return error(400, "bad_request", "need lat, lon, target {lat, lon}, radius_m, at")
        with state.lock:
            track = [p for p in state.by_agent.get(str(body.get("agent")), [])
                     if abs(_ts(p["recorded_at"]) - at) <= TRACK_WINDOW
                     and (p.get("accuracy_m") is None or p["accuracy_m"] <= MAX_ACCURACY_M)]
        if track:
            best = min(_distance_m(p["lat"], p["lon"], t_lat, t_lon) for p in track)
            method = "track"
            ok = best <= radius
        else:
            best = _distance_m(lat, lon, t_lat, t_lon)
            method = "checkin_point"
            ok = best <= radius and accuracy is not None and accuracy <= MAX_ACCURACY_M
        reason = (f"{method.replace('_', ' ')}: {best:.0f} m from the address "
                  f"({'within' if ok else 'beyond'} {radius:.0f} m)")
        if method == "checkin_point" and best <= radius and not ok:
            reason = f"check-in point accuracy {accuracy} m is not acceptable"
        return jsonify({"verified": ok, "distance_m": round(best, 1), "method": method,
                        "track_points": len(track), "reason": reason})

    @app.get("/api/v1/agents/<agent>/route")
    def route(agent: str):
        refused = gate()
        if refused is not None:
            return refused
        try:
            day = date.fromisoformat(request.args.get("date", ""))
        except ValueError:
            return error(400, "bad_request", "date must be YYYY-MM-DD")
        start = datetime.combine(day, datetime.min.time(), zone)
        end = start + timedelta(days=1)
        with state.lock:
            points = sorted((p for p in state.by_agent.get(agent, [])
                             if start <= _ts(p["recorded_at"]) < end),
                            key=lambda p: p["recorded_at"])
        return jsonify({"agent": agent, "date": day.isoformat(),
                        "points": [[p["lat"], p["lon"], p["recorded_at"]] for p in points]})

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "system": NAME, "positions": len(state.positions)})

    register_fault_routes(app, state)

    @app.get("/_sandbox/stats")
    def stats():
        with state.lock:
            return jsonify({"positions": len(state.positions), "batches": state.batches,
                            "duplicates": state.duplicates, "out_of_order": state.out_of_order,
                            "agents": {a: len(p) for a, p in state.by_agent.items()}})

    @app.post("/_sandbox/reset")
    def reset():
        with state.lock:
            state.faults.update(state.initial_faults)
            state.rng = random.Random(state.seed)
            state.clear()
        return jsonify({"reset": True})

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.sandbox.gps_server",
                                     description="Sandbox GPS tracking system.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--api-key", default=os.environ.get("GPS_SANDBOX_API_KEY",
                                                            DEFAULT_API_KEY))
    parser.add_argument("--latency-ms", type=int)
    parser.add_argument("--error-rate", type=float)
    parser.add_argument("--outage", action="store_true", default=None)
    parser.add_argument("--customers", type=int, help=argparse.SUPPRESS)  # runner uniformity
    parser.add_argument("--products", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    faults = Faults.from_env(ENV_PREFIX)
    faults.update({k: v for k, v in (("latency_ms", args.latency_ms),
                                      ("error_rate", args.error_rate),
                                      ("outage", args.outage)) if v is not None})
    app = create_app(api_key=args.api_key, faults=faults,
                     bank_timezone=os.environ.get("BANK_TIMEZONE", "Asia/Ho_Chi_Minh"))
    serve(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
