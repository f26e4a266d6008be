"""Phone simulator: field agents walking (well, riding) between their customers' addresses and
posting their positions to the portal like the phone app does — our JSON batch API for most
agents, the OsmAnd protocol (Traccar Client) for every third one.

Paths follow a street-like grid: from one address to the next the rider goes along the latitude
first, then along the longitude (an L, as streets do), at motorbike speed with a little GPS
noise, and stays a few minutes at each customer.

``make run`` starts it like the other simulators (``python -m integrations.sandbox.phone_sim
--port 8706``): it waits for PORTAL_URL to answer, asks the portal for the field agents' phones
(``flask field sim-phones``: a device token each, ``phone-sim <username>``, older ones revoked,
and a route along the addresses of their cases), then posts every ``--interval`` seconds. Its
own small HTTP API: ``GET /health``, ``GET /_sandbox/state``, ``PUT /_sandbox/faults``
(``{"paused": true}``, ``{"speed_factor": 5}``).

Tests drive it in-process: ``Walker(username, token, path)`` and ``PhoneSimulator(url,
walkers).step()`` post one point per walker.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import requests
from flask import Flask, jsonify, request

from integrations.sandbox._api import serve
from portal import clock as portal_clock

DEFAULT_PORT = 8706
SPEED_MS = 8.0  # ~30 km/h in city traffic
DWELL_SECONDS = 240
NOISE_M = 6.0
BATCH_EVERY = 3  # JSON agents keep points and post every few ticks, like a phone on battery


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    dlat = north_m / 111_320.0
    dlon = east_m / (111_320.0 * max(0.01, math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def street_path(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Corners of an L-shaped (lat first, then lon) path through ``points``, closed."""
    if len(points) < 2:
        return list(points)
    out = [points[0]]
    for a, b in zip(points, points[1:] + points[:1], strict=False):
        out.append((b[0], a[1]))
        out.append(b)
    return out


@dataclass
class Walker:
    username: str
    token: str
    path: list[tuple[float, float]]  # corners; stops are the even indexes after the start
    protocol: str = "json"  # json | osmand
    device_id: str | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    leg: int = 0
    progress_m: float = 0.0
    dwell_left: float = 0.0
    pending: list[dict] = field(default_factory=list)
    sent: int = 0
    last: tuple[float, float] | None = None

    def advance(self, seconds: float) -> tuple[float, float]:
        """Move along the path for ``seconds``; returns the true position."""
        if len(self.path) < 2:
            return self.path[0]
        if self.dwell_left > 0:
            self.dwell_left -= seconds
            seconds = 0
        distance = seconds * SPEED_MS
        while distance > 0:
            a, b = self.path[self.leg], self.path[(self.leg + 1) % len(self.path)]
            length = _leg_length(a, b)
            if self.progress_m + distance < length:
                self.progress_m += distance
                distance = 0
            else:
                distance -= length - self.progress_m
                self.progress_m = 0.0
                self.leg = (self.leg + 1) % len(self.path)
                if self.leg % 2 == 0:  # arrived at a customer
                    self.dwell_left = DWELL_SECONDS
                    break
        a, b = self.path[self.leg], self.path[(self.leg + 1) % len(self.path)]
        length = _leg_length(a, b) or 1.0
        t = self.progress_m / length
        return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t

    def reading(self, lat: float, lon: float, at: datetime) -> dict:
        noisy = _offset(lat, lon, self.rng.gauss(0, NOISE_M), self.rng.gauss(0, NOISE_M))
        self.last = noisy
        return {"lat": round(noisy[0], 6), "lon": round(noisy[1], 6),
                "accuracy_m": round(abs(self.rng.gauss(8, 3)) + 3, 1),
                "recorded_at": at.isoformat().replace("+00:00", "Z"),
                "speed": 0.0 if self.dwell_left > 0 else SPEED_MS,
                "battery": max(5, 100 - self.sent // 60)}


def _leg_length(a, b) -> float:
    north = (b[0] - a[0]) * 111_320.0
    east = (b[1] - a[1]) * 111_320.0 * math.cos(math.radians(a[0]))
    return math.hypot(north, east)


class PhoneSimulator:
    def __init__(self, portal_url: str, walkers: list[Walker], *, timeout: float = 10.0,
                 clock: Callable[[], datetime] = portal_clock.running_now):
        self.clock = clock  # stamps the positions the phones post
        self.portal_url = portal_url.rstrip("/")
        self.walkers = walkers
        self.session = requests.Session()
        self.timeout = timeout
        self.paused = False
        self.speed_factor = 1.0
        self.errors: list[str] = []
        self.ticks = 0

    def post(self, walker: Walker, points: list[dict]) -> requests.Response:
        if walker.protocol == "osmand":
            p = points[-1]
            params = {"id": walker.device_id or walker.username, "lat": p["lat"],
                      "lon": p["lon"], "timestamp": p["recorded_at"],
                      "accuracy": p["accuracy_m"], "speed": round(p["speed"] / 0.514444, 2),
                      "batt": p["battery"], "token": walker.token}
            return self.session.post(f"{self.portal_url}/api/v1/field/osmand", params=params,
                                     timeout=self.timeout)
        return self.session.post(f"{self.portal_url}/api/v1/field/locations",
                                 json={"points": points}, timeout=self.timeout,
                                 headers={"Authorization": f"Bearer {walker.token}"})

    def step(self, seconds: float = 5.0, *, flush: bool = True,
             at: datetime | None = None) -> list[int]:
        """Advance every walker by ``seconds`` and post; returns the HTTP statuses."""
        at = at or self.clock()
        statuses = []
        self.ticks += 1
        for walker in self.walkers:
            lat, lon = walker.advance(seconds * self.speed_factor)
            walker.pending.append(walker.reading(lat, lon, at))
            if not flush and walker.protocol == "json" and len(walker.pending) < BATCH_EVERY:
                continue
            try:
                response = self.post(walker, walker.pending)
                statuses.append(response.status_code)
                if response.status_code < 500:
                    walker.sent += len(walker.pending)
                    walker.pending = []  # accepted, or refused for good
                else:
                    self.errors.append(f"{walker.username}: HTTP {response.status_code}")
            except requests.RequestException as exc:
                self.errors.append(f"{walker.username}: {type(exc).__name__}")
                statuses.append(0)
            walker.pending = walker.pending[-500:]
        return statuses

    def run(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            if not self.paused:
                self.step(interval, flush=False)


def walkers_from_phones(phones: list[dict]) -> list[Walker]:
    """Walkers for the phones the portal issued (``flask field sim-phones``)."""
    return [Walker(p["username"], p["token"], street_path([tuple(s) for s in p["stops"]]),
                   protocol=p["protocol"], rng=random.Random(p["seed"])) for p in phones]


def phones_from_portal(agents: int) -> list[dict]:
    """Ask the portal for phones (its CLI, with this process's DATABASE_URL)."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "field", "sim-phones",
                           "--agents", str(agents)], capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode:
        raise RuntimeError((done.stderr or done.stdout).strip()[-300:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_for(url: str, seconds: float = 120.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url.rstrip('/')}/health", timeout=3).status_code < 500:
                return True
        except requests.RequestException:
            pass
        time.sleep(1)
    return False


def create_control_app(sim: PhoneSimulator):
    app = Flask("phone-sim")

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "system": "GPS", "walkers": len(sim.walkers)})

    @app.get("/_sandbox/state")
    def state():
        return jsonify({"paused": sim.paused, "speed_factor": sim.speed_factor,
                        "ticks": sim.ticks, "errors": sim.errors[-20:],
                        "walkers": [{"agent": w.username, "protocol": w.protocol,
                                     "sent": w.sent, "last": w.last} for w in sim.walkers]})

    @app.put("/_sandbox/faults")
    def faults():
        body = request.get_json(silent=True) or {}
        if "paused" in body:
            sim.paused = bool(body["paused"])
        if "speed_factor" in body:
            sim.speed_factor = max(0.1, float(body["speed_factor"]))
        return jsonify({"paused": sim.paused, "speed_factor": sim.speed_factor})

    return app


def _start_walking(sim: PhoneSimulator, interval: float, agents: int,
                   stop: threading.Event) -> None:
    """Background: wait for the portal, give the field agents their phones, then walk."""
    print(f"phone-sim: waiting for the portal at {sim.portal_url}", flush=True)
    while not stop.is_set():
        if wait_for(sim.portal_url, 30):
            try:
                sim.walkers = walkers_from_phones(phones_from_portal(agents))
                break
            except Exception as exc:  # noqa: BLE001 - no database yet: try again
                sim.errors.append(f"setup: {type(exc).__name__}: {exc}"[:300])
        stop.wait(10)
    print(f"phone-sim: {len(sim.walkers)} field agents on the road, a point every "
          f"{interval:g} s", flush=True)
    sim.run(interval, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.sandbox.phone_sim",
                                     description="Phones of field agents posting GPS points.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--portal-url", default=os.environ.get("PORTAL_URL",
                                                               "http://127.0.0.1:5000"))
    parser.add_argument("--interval", type=float,
                        default=float(os.environ.get("PHONE_SIM_INTERVAL", "5")))
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--customers", type=int, help=argparse.SUPPRESS)  # runner uniformity
    parser.add_argument("--products", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sim = PhoneSimulator(args.portal_url, [])
    stop = threading.Event()
    threading.Thread(target=_start_walking, args=(sim, args.interval, args.agents, stop),
                     daemon=True, name="phone-sim").start()
    try:
        serve(create_control_app(sim), args.host, args.port)
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
