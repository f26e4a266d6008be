"""A mixed load at stated rates against a running portal: collection agents browsing (login, work
queue, case view, customer search), signed payment webhooks, and field agents' GPS points (our
JSON batch and the OsmAnd protocol).

Open loop: each request type has its own schedule (``rate`` requests/s, evenly spaced from one
common start) and its own pool of client threads; a request's latency counts from its scheduled
time, so a server that falls behind shows it in the latencies (no coordinated omission) and in
the achieved rate (requests completed ÷ time from the start to the last completion). Every
response is checked (status and, where it says, what was accepted): anything else is an error.
The run is bounded: nothing is scheduled after ``seconds``, and every request has a timeout.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import requests

from portal import clock
from portal.signing import signed_headers

REQUEST_TYPES = ("login", "work queue", "case view", "search", "payment webhook", "gps batch",
                 "gps osmand", "health")  # health: the baseline (GET /health, one DB + Redis ping)
PAYMENT_WEBHOOK = "/api/v1/payments/notifications"
GPS_BATCH = "/api/v1/field/locations"
GPS_OSMAND = "/api/v1/field/osmand"
TIMEOUT_S = 30
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Agent:
    """A collection agent the load logs in as, with the customers of its own cases."""

    username: str
    password: str
    cifs: tuple[str, ...]
    names: tuple[str, ...]  # search terms that match its customers


@dataclass(frozen=True)
class World:
    """What the requests need from the seeded database."""

    agents: tuple[Agent, ...]
    loans: tuple[tuple[str, str], ...]  # (account number, cif) the payments are for
    field_tokens: tuple[str, ...]  # API tokens (scope api.locations) of field agents
    payment_secret: str
    gps_batch_points: int = 50


@dataclass
class TypeResult:
    name: str
    rate: float  # requested, per second
    latencies: list[float] = field(default_factory=list)  # seconds, from the scheduled time
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    last_done: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    def percentile(self, share: float) -> float:
        """In milliseconds (nearest rank)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))] * 1000

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0

    @property
    def p95_ms(self) -> float:
        return self.percentile(0.95)


@dataclass
class LoadResult:
    seconds: float  # the scheduled window
    started: float
    types: dict[str, TypeResult]

    @property
    def requests(self) -> int:
        return sum(t.count for t in self.types.values())

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.types.values())

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def achieved_rate(self, name: str) -> float:
        """Requests completed per second, from the start to the last completion."""
        result = self.types[name]
        if not result.count:
            return 0.0
        return result.count / max(self.seconds, result.last_done - self.started)

    def rows(self) -> list[dict]:
        return [{"type": name, "rate": t.rate, "achieved": self.achieved_rate(name),
                 "requests": t.count, "errors": t.errors, "p50_ms": t.p50_ms,
                 "p95_ms": t.p95_ms, "p99_ms": t.percentile(0.99)}
                for name, t in self.types.items()]


class _Failed(Exception):
    """A response that is not what the request type expects."""


class MixedLoad:
    """``MixedLoad(url, world, rates).run(seconds)``: ``rates`` maps request types (any of
    REQUEST_TYPES) to requests per second."""

    def __init__(self, url: str, world: World, rates: dict[str, float], *,
                 sessions: int = 8, threads_per_type: int = 8):
        unknown = set(rates) - set(REQUEST_TYPES)
        if unknown:
            raise ValueError(f"unknown request types: {sorted(unknown)}")
        self.url = url
        self.world = world
        self.rates = {name: rate for name, rate in rates.items() if rate > 0}
        self.threads_per_type = threads_per_type
        self.tag = uuid.uuid4().hex[:8]
        self._sessions: queue.Queue = queue.Queue()
        self._session_count = sessions
        self._counters = {name: itertools.count() for name in REQUEST_TYPES}
        now = clock.now().replace(microsecond=0)
        # GPS times: one range per protocol, a second apart per point and per agent, more than a
        # day back: the demo seed's trail (every 5 minutes of today's or yesterday's working
        # hours, portal/seed/demo.py) never holds them, so no point is a duplicate of the seed's
        self._batch_base = now - timedelta(hours=30)
        self._osmand_base = now - timedelta(hours=31)
        self._local = threading.local()

    # -- agents' sessions -----------------------------------------------------------------------

    def new_session(self) -> requests.Session:
        """An HTTP client session (tests/cluster's load gives one that retries)."""
        return requests.Session()

    def login(self, agent: Agent) -> requests.Session:
        session = self.new_session()
        form = session.get(self.url + "/auth/login", timeout=TIMEOUT_S)
        match = CSRF.search(form.text)
        if form.status_code != 200 or not match:
            raise _Failed(f"login form: {form.status_code}")
        response = session.post(self.url + "/auth/login", timeout=TIMEOUT_S,
                                allow_redirects=False,
                                data={"username": agent.username, "password": agent.password,
                                      "csrf_token": match.group(1), "next": ""})
        if response.status_code != 302:
            raise _Failed(f"login: {response.status_code}")
        session.agent = agent  # type: ignore[attr-defined]
        return session

    def prepare(self) -> None:
        """Log ``sessions`` agents in before the measured window (a working day's start)."""
        for agent in itertools.islice(itertools.cycle(self.world.agents), self._session_count):
            self._sessions.put(self.login(agent))

    def _page(self, path_for: Callable[[Agent, int], str], i: int) -> int:
        session = self._sessions.get(timeout=TIMEOUT_S)
        try:
            response = session.get(self.url + path_for(session.agent, i), timeout=TIMEOUT_S,
                                   allow_redirects=False)
        finally:
            self._sessions.put(session)
        if response.status_code != 200:
            raise _Failed(f"{response.status_code} {response.headers.get('Location', '')}")
        return response.status_code

    # -- the request types ----------------------------------------------------------------------

    def _http(self) -> requests.Session:
        """A keep-alive session per client thread (webhooks and GPS)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self.new_session()
        return session

    def do_login(self, i: int) -> int:
        agent = self.world.agents[i % len(self.world.agents)]
        session = self.login(agent)
        self._sessions.put(session)  # the new session browses from now on …
        with contextlib.suppress(queue.Empty):
            self._sessions.get_nowait().close()  # … in place of the oldest one
        return 302

    def do_queue(self, i: int) -> int:
        return self._page(lambda agent, n: "/cases/", i)

    def do_case(self, i: int) -> int:
        return self._page(lambda agent, n: f"/cases/{agent.cifs[n % len(agent.cifs)]}", i)

    def do_search(self, i: int) -> int:
        return self._page(
            lambda agent, n: f"/cases/search?q={agent.names[n % len(agent.names)]}", i)

    def do_payment(self, i: int) -> int:
        account, cif = self.world.loans[i % len(self.world.loans)]
        body = json.dumps({
            "event_id": f"load-{self.tag}-{i}", "type": "payment.received",
            "reference_number": f"LOAD-{self.tag}-{i}", "loan_account_number": account,
            "cif": cif, "amount": f"{50000 + i % 991}.00", "currency": "VND",
            "paid_at": clock.now().isoformat(timespec="seconds"), "channel": "ATM",
        }, separators=(",", ":")).encode()
        response = self._http().post(self.url + PAYMENT_WEBHOOK, data=body, timeout=TIMEOUT_S,
                                     headers=signed_headers(self.world.payment_secret, body))
        if response.status_code != 201:
            raise _Failed(f"{response.status_code} {response.text[:200]}")
        return response.status_code

    def gps_batch(self, i: int) -> tuple[str, list[dict]]:
        """The ``i``-th GPS batch: a field agent's token and its points (seconds of their own)."""
        tokens, size = self.world.field_tokens, self.world.gps_batch_points
        first = self._batch_base + timedelta(seconds=(i // len(tokens)) * size)
        return tokens[i % len(tokens)], [
            {"lat": 10.7769 + k * 1e-5, "lon": 106.7009 + (i % 50) * 1e-4, "accuracy_m": 8,
             "speed": 6.5, "heading": 90, "battery": 80,
             "recorded_at": (first + timedelta(seconds=k)).isoformat()} for k in range(size)]

    def do_gps_batch(self, i: int) -> int:
        token, points = self.gps_batch(i)
        size = len(points)
        response = self._http().post(self.url + GPS_BATCH, json={"points": points},
                                     headers={"Authorization": f"Bearer {token}"},
                                     timeout=TIMEOUT_S)
        if response.status_code != 200 or response.json().get("accepted") != size:
            raise _Failed(f"{response.status_code} {response.text[:200]}")
        return response.status_code

    def do_osmand(self, i: int) -> int:
        tokens = self.world.field_tokens
        at = self._osmand_base + timedelta(seconds=i // len(tokens))
        params = {"token": tokens[i % len(tokens)], "lat": f"{10.78 + (i % 97) * 1e-4:.6f}",
                  "lon": f"{106.70 + (i % 89) * 1e-4:.6f}", "timestamp": int(at.timestamp()),
                  "accuracy": 12, "speed": 3.1, "bearing": 180, "batt": 64}
        response = self._http().post(self.url + GPS_OSMAND, params=params, timeout=TIMEOUT_S)
        if response.status_code != 200 or response.json().get("accepted") != 1:
            raise _Failed(f"{response.status_code} {response.text[:200]}")
        return response.status_code

    def do_health(self, i: int) -> int:
        response = self._http().get(self.url + "/health", timeout=TIMEOUT_S)
        if response.status_code != 200:
            raise _Failed(f"{response.status_code} {response.text[:200]}")
        return response.status_code

    HANDLERS = {"login": "do_login", "work queue": "do_queue", "case view": "do_case",
                "search": "do_search", "payment webhook": "do_payment",
                "gps batch": "do_gps_batch", "gps osmand": "do_osmand", "health": "do_health"}

    # -- the run --------------------------------------------------------------------------------

    def run(self, seconds: float) -> LoadResult:
        if self._sessions.empty():
            self.prepare()
        started = time.time() + 0.5
        results = {name: TypeResult(name, rate) for name, rate in self.rates.items()}
        lock = threading.Lock()

        def one(name: str, handler: Callable[[int], int], scheduled: float, i: int) -> None:
            delay = scheduled - time.time()
            if delay > 0:
                time.sleep(delay)
            try:
                status, error = handler(i), None
            except _Failed as exc:
                status, error = "failed", str(exc)
            except Exception as exc:  # a timeout, a refused connection, no session free …
                status, error = "exception", f"{type(exc).__name__}: {exc}"
            done = time.time()
            result = results[name]
            with lock:
                result.latencies.append(done - scheduled)
                result.statuses[status] += 1
                result.last_done = max(result.last_done, done)
                if error is not None:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(error)

        def schedule(name: str, rate: float, pool: ThreadPoolExecutor) -> None:
            handler = getattr(self, self.HANDLERS[name])
            interval = 1.0 / rate
            offset = (REQUEST_TYPES.index(name) / len(REQUEST_TYPES)) * interval  # interleave
            for n in itertools.count():
                scheduled = started + offset + n * interval
                if scheduled - started >= seconds:
                    break
                # hand over just before the scheduled time; the worker waits for it exactly
                ahead = scheduled - time.time() - 0.05
                if ahead > 0:
                    time.sleep(ahead)
                pool.submit(one, name, handler, scheduled, next(self._counters[name]))

        pools = {name: ThreadPoolExecutor(self.threads_per_type, thread_name_prefix=name)
                 for name in self.rates}
        schedulers = [threading.Thread(target=schedule, args=(name, rate, pools[name]))
                      for name, rate in self.rates.items()]
        for thread in schedulers:
            thread.start()
        for thread in schedulers:
            thread.join()
        for pool in pools.values():
            pool.shutdown(wait=True)
        return LoadResult(seconds=seconds, started=started, types=results)
