"""Call centre: CTI events accepted per second (with p99 latency) beside a bare endpoint in the
same run, and the agent-status board rendered for 500 agents.

CTI:  C client threads POST signed events (call.started / call.answered / call.ended of
      distinct calls to known customers, and agent.status_changed) to ``/api/v1/cti/events`` —
      verify the signature, parse, match agent and customer, merge, action + CALL_LOGGED on the
      end, commit.
bare: the same clients POST the same bodies to a route of the same server that only reads the
      body and answers JSON (the HTTP stack alone: the limit).

The server is a separate process (werkzeug, threaded) so the clients' GIL does not slow it.
Rounds alternate (BENCH_ROUNDS of BENCH_CTI_EVENTS: 2 × 300 reduced, 3 × 600 with --full) and
the best of each is kept. Target: CTI ≥ 35% of bare. Board (500 agents at both sizes): median /
p95 of BENCH_BOARD_REQUESTS (15 reduced, 30 full) renders of the live partial (what the page
polls) and of the whole page; target < 300 ms.

    make bench            # pytest -m benchmark tests/benchmarks
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import insert

from portal.signing import signed_headers
from tests.benchmarks.sizing import bench_size

N = bench_size(300, 600, "BENCH_CTI_EVENTS")
ROUNDS = bench_size(2, 3, "BENCH_ROUNDS")
CLIENTS = int(os.environ.get("BENCH_CTI_CLIENTS", "8"))
BOARD_AGENTS = 500
BOARD_REQUESTS = bench_size(15, 30, "BENCH_BOARD_REQUESTS")
TARGET = 0.35
BOARD_TARGET_MS = 300
SECRET = "bench-cti-secret"
DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
BEGIN = "<!-- cti-benchmark:begin -->"
END = "<!-- cti-benchmark:end -->"


def _serve(db_url: str, redis_url: str, port_queue) -> None:
    """The portal in a child process, with a bare route beside the CTI webhook."""
    from flask import jsonify, request
    from werkzeug.serving import WSGIRequestHandler, make_server

    from portal import create_app
    from portal.config import TestConfig
    from portal.extensions import csrf
    from portal.permissions.decorators import public

    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": redis_url,
                                  "RATELIMIT_STORAGE_URI": redis_url,
                                  "CTI_WEBHOOK_SECRETS": SECRET, "LOG_LEVEL": "WARNING"})

    @app.post("/bench/bare")
    @public
    def bare():
        body = request.get_data()
        return jsonify({"accepted": True, "bytes": len(body)})

    csrf.exempt(bare)  # like the webhooks blueprint

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    port_queue.put(server.server_port)
    server.serve_forever()


@pytest.fixture
def server(app, db):
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(app.config["SQLALCHEMY_DATABASE_URI"],
                                                   app.config["REDIS_URL"], ports),
                              daemon=True)
    process.start()
    port = ports.get(timeout=60)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/health", timeout=2)
            break
        except requests.RequestException:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.join(timeout=10)


def _bodies(agents: list[str], phones: list[str], n: int) -> list[bytes]:
    """``n`` events as a call centre sends them: every agent in a call at the same time, each
    call's events in order (status on_call, started, answered, ended) and seconds apart, so
    concurrent requests touch different calls and agents, as in real traffic."""
    base = datetime.now(UTC) - timedelta(minutes=30)
    run = uuid.uuid4().hex[:6]
    calls: list[list[tuple[str, dict, datetime]]] = []
    i = 0
    while len(calls) * 4 < n:
        agent = agents[i % len(agents)]
        start = base + timedelta(seconds=i)
        data = {"call_id": f"B-{run}-{i}", "direction": "outbound", "agent_id": agent,
                "phone": phones[i % len(phones)], "started_at": start.isoformat()}
        calls.append([
            ("agent.status_changed", {"agent_id": agent, "status": "on_call"}, start),
            ("call.started", data, start),
            ("call.answered", data, start + timedelta(seconds=5)),
            ("call.ended", {**data, "duration_seconds": 60, "disposition": "ANSWERED"},
             start + timedelta(seconds=65))])
        i += 1
    bodies: list[bytes] = []
    wave = len(agents)
    for first in range(0, len(calls), wave):  # one call per agent at a time
        group = calls[first:first + wave]
        for phase in range(4):
            for events in group:
                kind, payload, at = events[phase]
                bodies.append(json.dumps({"event_id": uuid.uuid4().hex, "type": kind,
                                          "occurred_at": at.isoformat(),
                                          "data": payload}).encode())
    return bodies[:n]


def _fire(url: str, bodies: list[bytes]) -> dict:
    """POST every body with CLIENTS threads; events/s and latency percentiles."""
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def post(body: bytes) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        response = session.post(url, data=body, headers=signed_headers(SECRET, body),
                                timeout=30)
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
        return response.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(post, bodies))
    wall = time.perf_counter() - started
    assert all(s == 200 for s in statuses), {s for s in statuses}
    latencies.sort()
    return {"rate": len(bodies) / wall, "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def _people(db, agents: int, customers: int) -> tuple[list[str], list[str]]:
    from portal.models import Customer, Phone, Team, User

    team = Team(name=f"Bench {uuid.uuid4().hex[:6]}")
    db.session.add(team)
    db.session.flush()
    run = uuid.uuid4().hex[:4]
    db.session.execute(insert(User), [
        {"username": f"b{run}{n}", "full_name": f"Bench Agent {n:03d}", "role": "agent",
         "team_id": team.id, "password_hash": "x", "phone_extension": f"{run}{n}",
         "cti_agent_id": f"CTI-{run}-{n}"} for n in range(agents)])
    db.session.execute(insert(Customer), [
        {"cif": f"BC{run}{n:06d}", "name": f"Bench Customer {n}", "source_system": "T24"}
        for n in range(customers)])
    db.session.execute(insert(Phone), [
        {"cif": f"BC{run}{n:06d}", "number": f"093{n:07d}", "number_e164": f"+8493{n:07d}",
         "type": "MOBILE", "source_system": "T24"} for n in range(customers)])
    db.session.commit()
    return ([f"CTI-{run}-{n}" for n in range(agents)],
            [f"+8493{n:07d}" for n in range(customers)])


def _write_doc(lines: list[str]) -> None:
    block = "\n".join([BEGIN, *lines, END])
    doc = DOC.read_text() if DOC.exists() else "# Performance\n"
    if BEGIN in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: block, doc,
                     flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n## Call centre (CTI) throughput and agent board\n\n" + \
            "`tests/benchmarks/test_cti_throughput.py` (`make bench`).\n\n" + block + "\n"
    DOC.write_text(doc)


_results: dict[str, list[str]] = {}


@pytest.mark.benchmark
def test_cti_events_per_second_vs_bare_endpoint(db, server, bench_report):
    agents, phones = _people(db, 50, 200)
    best = {"bare": None, "cti": None}
    for _ in range(ROUNDS):
        for name, path in (("bare", "/bench/bare"), ("cti", "/api/v1/cti/events")):
            result = _fire(server + path, _bodies(agents, phones, N))
            if best[name] is None or result["rate"] > best[name]["rate"]:
                best[name] = result
    bare, cti = best["bare"], best["cti"]
    ratio = cti["rate"] / bare["rate"]
    print(f"\nbare {bare['rate']:.0f}/s p99 {bare['p99']:.1f} ms · cti {cti['rate']:.0f}/s "
          f"p99 {cti['p99']:.1f} ms · {ratio:.0%}")
    _results["cti"] = [
        f"| bare endpoint (HTTP stack only) | {bare['rate']:,.0f} | {bare['p50']:.1f} | "
        f"{bare['p99']:.1f} | — |",
        f"| CTI webhook (`/api/v1/cti/events`) | {cti['rate']:,.0f} | {cti['p50']:.1f} | "
        f"{cti['p99']:.1f} | {ratio:.0%} of bare: "
        f"{'met' if ratio >= TARGET else 'MISSED'} (≥ {TARGET:.0%}) |",
    ]
    _flush()
    bench_report.record(f"CTI webhook, {N} events × {ROUNDS}, {CLIENTS} clients", cti["rate"],
                        "events/s", baseline=bare["rate"], baseline_label="bare endpoint",
                        target=f"≥ {TARGET:.0%} of bare", met=ratio >= TARGET,
                        notes=f"p99 {cti['p99']:.0f} ms (bare {bare['p99']:.0f} ms)")
    assert ratio >= TARGET, f"CTI events at {ratio:.0%} of the bare endpoint"


def _timed(client, path: str, headers: dict, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


@pytest.mark.benchmark
def test_board_renders_500_agents(app, db, client, login, make_user, bench_report):
    from portal.models import Action, ActionCode, AgentStatus, CallRecord, Team, User

    agents, phones = _people(db, BOARD_AGENTS, 300)
    team_id = db.session.scalar(User.__table__.select().with_only_columns(User.team_id)
                                .where(User.cti_agent_id == agents[0]))
    supervisor = make_user(role="supervisor", team_id=team_id)
    db.session.get(Team, team_id).supervisor_id = supervisor.id
    ids = list(db.session.scalars(
        User.__table__.select().with_only_columns(User.id).where(User.team_id == team_id,
                                                                 User.role == "agent")))
    code = ActionCode(type="CALL", subtype="OUTBOUND", result="PTP", label="Promise to pay",
                      is_contact=True, is_promise=True)
    db.session.add(code)
    db.session.flush()
    now = datetime.now(UTC)
    statuses = ("available", "on_call", "wrap_up", "break", "offline")
    db.session.execute(insert(AgentStatus), [
        {"agent_id": a, "status": statuses[i % 5], "since": now - timedelta(minutes=i % 40),
         "source": "cti", "synced": True,
         "current_call_id": f"LIVE-{i}" if i % 5 == 1 else None,
         "current_cif": f"BC{agents[0].split('-')[1]}{i % 300:06d}" if i % 5 == 1 else None}
        for i, a in enumerate(ids)])
    calls, actions = [], []
    for i, a in enumerate(ids):
        for k in range(20):  # 10,000 calls today
            started = now - timedelta(minutes=5 + k * 12 + i % 7)
            calls.append({"call_id": f"BB-{a}-{k}", "agent_id": a, "phone": phones[k % 300],
                          "direction": "outbound", "started_at": started,
                          "answered_at": started if k % 2 else None,
                          "ended_at": started + timedelta(seconds=90),
                          "duration_s": 90 if k % 2 else 0, "source": "cti"})
        cif = f"BC{agents[0].split('-')[1]}{i % 300:06d}"
        for k in range(4):
            actions.append({"cif": cif, "agent_id": a, "action_code_id": code.id,
                            "type": "CALL", "subtype": "OUTBOUND", "result": "PTP",
                            "at": now - timedelta(minutes=10 + k), "source": "cti"})
    db.session.execute(insert(CallRecord), calls)
    db.session.execute(insert(Action), actions)
    db.session.commit()
    db.session.execute(CallRecord.__table__.select().limit(1))
    from sqlalchemy import text

    db.session.execute(text("ANALYZE call_records; ANALYZE actions; ANALYZE agent_status"))
    db.session.commit()
    login(supervisor)
    partial = {"HX-Request": "true", "HX-Target": "board-live"}
    body = client.get("/supervisor/board", headers=partial).get_data(as_text=True)
    assert body.count('data-testid="board-row"') == BOARD_AGENTS
    _timed(client, "/supervisor/board", partial, 3)  # warm up
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        _timed(client, "/supervisor/board", partial, 5)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    live = _timed(client, "/supervisor/board", partial, BOARD_REQUESTS)
    page = _timed(client, "/supervisor/board?sort=talk&dir=desc", {}, BOARD_REQUESTS)
    print(f"\nboard 500 agents: partial {live[0]:.0f}/{live[1]:.0f} ms, page "
          f"{page[0]:.0f}/{page[1]:.0f} ms (median/p95)")
    _results["board"] = [
        f"| board, live partial (polled every 5 s) | {live[0]:.0f} | {live[1]:.0f} | "
        f"{'met' if live[0] < BOARD_TARGET_MS else 'MISSED'} (median < {BOARD_TARGET_MS}) |",
        f"| board, whole page sorted by talk time | {page[0]:.0f} | {page[1]:.0f} | "
        f"{'met' if page[0] < BOARD_TARGET_MS else 'MISSED'} (median < {BOARD_TARGET_MS}) |",
    ]
    _flush()
    for what, (median, p95) in (("live partial", live), ("whole page", page)):
        bench_report.record(f"agent board, {BOARD_AGENTS} agents: {what} median", median, "ms",
                            target=f"median < {BOARD_TARGET_MS} ms",
                            met=median < BOARD_TARGET_MS, notes=f"p95 {p95:.0f} ms")
    # the target applies to the typical render (median); p95 is reported beside it (on a
    # shared 2-CPU host it mostly measures the neighbours)
    assert live[0] < BOARD_TARGET_MS and page[0] < BOARD_TARGET_MS


def _flush() -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Last run: {stamp}, {os.cpu_count()} CPUs, PostgreSQL and Redis on the same "
             f"host; {CLIENTS} client threads, best of {ROUNDS} rounds of {N} events; the "
             "server is the portal in its own process (werkzeug, threaded).", ""]
    if "cti" in _results:
        lines += ["| endpoint | events/s | p50 (ms) | p99 (ms) | CTI ÷ bare |",
                  "|---|---:|---:|---:|---|", *_results["cti"], ""]
    if "board" in _results:
        lines += [f"Agent board with {BOARD_AGENTS} agents, 10,000 calls and 2,000 actions "
                  f"today ({BOARD_REQUESTS} requests, test client):", "",
                  "| render | median (ms) | p95 (ms) | target |", "|---|---:|---:|---|",
                  *_results["board"]]
    _write_doc(lines)
