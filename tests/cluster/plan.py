"""The pieces of the cluster run (tests/cluster/run.py) that need no root, no network and no
server, so `make test` can check them quickly (tests/unit/test_cluster_plan.py):

- the network plan: one namespace per node, a veth pair from each to a bridge in the root
  namespace, the commands that build it and the ones that take it down again;
- the HAProxy configuration: the web nodes behind health checks, retries and redispatch, and
  the TCP forwards that let the namespaces reach the loopback-only PostgreSQL and Redis;
- the accounting: what the load sent against what the product stored (payments by reference,
  events per payment, effects per payment), the killed worker's jobs, and the report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# -- the network plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str  # web1, web2, worker1, worker2
    kind: str  # "web" or "worker"
    netns: str
    address: str
    host_link: str  # the veth end in the root namespace (on the bridge)
    ns_link: str  # the veth end inside the namespace


@dataclass(frozen=True)
class Topology:
    bridge: str
    gateway: str  # the bridge's address: HAProxy and the forwards listen here
    prefix_len: int
    nodes: tuple[Node, ...]

    def of_kind(self, kind: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == kind)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


def plan(*, webs: int = 2, workers: int = 2, prefix: str = "crmc",
         subnet: str = "10.77.0") -> Topology:
    """Addresses: the bridge .1, web nodes .11, .12 …, worker nodes .21, .22 …"""
    if not 1 <= webs <= 9 or not 1 <= workers <= 9:
        raise ValueError("1 to 9 nodes of each kind")
    nodes = []
    for kind, count, base in (("web", webs, 10), ("worker", workers, 20)):
        for i in range(1, count + 1):
            short = f"{'w' if kind == 'web' else 'k'}{i}"
            nodes.append(Node(
                name=f"{kind}{i}", kind=kind, netns=f"{prefix}-{kind}{i}",
                address=f"{subnet}.{base + i}", host_link=f"{prefix}h-{short}",
                ns_link=f"{prefix}n-{short}"))
    for node in nodes:
        if len(node.host_link) > 15 or len(node.ns_link) > 15:
            raise ValueError(f"link name too long for Linux: {node.host_link}")
    return Topology(bridge=f"{prefix}-br0", gateway=f"{subnet}.1", prefix_len=24,
                    nodes=tuple(nodes))


def setup_commands(topology: Topology) -> list[list[str]]:
    """``ip`` commands, in order, that build the network (run as root)."""
    t = topology
    commands = [
        ["ip", "link", "add", t.bridge, "type", "bridge"],
        ["ip", "addr", "add", f"{t.gateway}/{t.prefix_len}", "dev", t.bridge],
        ["ip", "link", "set", t.bridge, "up"],
    ]
    for n in t.nodes:
        commands += [
            ["ip", "netns", "add", n.netns],
            ["ip", "link", "add", n.host_link, "type", "veth", "peer", "name", n.ns_link],
            ["ip", "link", "set", n.host_link, "master", t.bridge],
            ["ip", "link", "set", n.host_link, "up"],
            ["ip", "link", "set", n.ns_link, "netns", n.netns],
            ["ip", "-n", n.netns, "addr", "add", f"{n.address}/{t.prefix_len}", "dev",
             n.ns_link],
            ["ip", "-n", n.netns, "link", "set", n.ns_link, "up"],
            ["ip", "-n", n.netns, "link", "set", "lo", "up"],
            ["ip", "-n", n.netns, "route", "add", "default", "via", t.gateway],
        ]
    return commands


def teardown_commands(topology: Topology) -> list[list[str]]:
    """Undo ``setup_commands``; each may fail harmlessly (the thing is already gone). Deleting a
    namespace deletes the veth end inside it, and with it its peer on the bridge."""
    t = topology
    commands = []
    for n in t.nodes:
        commands += [["ip", "netns", "delete", n.netns], ["ip", "link", "delete", n.host_link]]
    commands.append(["ip", "link", "delete", t.bridge])
    return commands


# -- HAProxy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    http: int = 8080  # HAProxy's front door on the bridge address
    web: int = 8000  # gunicorn on each web node
    postgres: int = 5432
    redis: int = 6379
    stats: int = 8404


def render_haproxy(topology: Topology, ports: Ports = Ports(), *,
                   postgres: str = "127.0.0.1:5432", redis: str = "127.0.0.1:6379",
                   webs: Iterable[Node] | None = None) -> str:
    """The load balancer in front of ``webs`` (default: every web node): a health check on
    ``GET /health`` every second (3 failures: out, 2 successes: back; a refused connection:
    out at once), up to 3 retries on
    another server for a request a dead node never answered (connection refused or reset, no
    response), and TCP forwards of PostgreSQL and Redis onto the bridge address."""
    g = topology.gateway
    servers = "\n".join(
        f"    server {n.name} {n.address}:{ports.web} check"
        for n in (topology.of_kind("web") if webs is None else webs))
    return f"""\
# Rendered by tests/cluster/plan.py (render_haproxy): the cluster run's load balancer.
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 30s
    timeout queue 30s
    timeout check 5s
    # a request a dead node never answered goes to another node (up to 3 times)
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
    option http-buffer-request

frontend portal
    bind {g}:{ports.http}
    option forwardfor
    default_backend web

backend web
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    # a node that refuses connections is taken out at once; one that stops answering its
    # health check, after 3 s (a slow answer under load is not a failure: 5 s check timeout)
    default-server inter 1s fall 3 rise 2 observe layer4 error-limit 1 on-error mark-down
{servers}

listen stats
    bind {g}:{ports.stats}
    stats enable
    stats uri /

# PostgreSQL and Redis listen on loopback only: forwarded onto the bridge for the namespaces
listen postgres
    mode tcp
    bind {g}:{ports.postgres}
    timeout client 1h
    timeout server 1h
    server postgres {postgres}

listen redis
    mode tcp
    bind {g}:{ports.redis}
    timeout client 1h
    timeout server 1h
    server redis {redis}
"""


# -- accounting ---------------------------------------------------------------------------------


@dataclass
class PaymentAccount:
    """What the load sent against what the product stored, per payment reference."""

    answered: int  # references the portal answered 2xx (after the client's retries)
    unanswered: int  # references whose request failed beyond the client's retries
    lost: list[str] = field(default_factory=list)  # answered 2xx, no payment row
    doubled: list[str] = field(default_factory=list)  # more than one payment row
    phantom: list[str] = field(default_factory=list)  # stored, never sent under this run's tag
    events_lost: list[str] = field(default_factory=list)  # stored payment, no PAYMENT_RECEIVED
    events_doubled: list[str] = field(default_factory=list)
    effects_lost: list[str] = field(default_factory=list)  # event, no timeline action
    effects_doubled: list[str] = field(default_factory=list)
    undelivered: int = 0  # deliveries of these events not (yet) delivered

    @property
    def problems(self) -> int:
        return sum(len(x) for x in (self.lost, self.doubled, self.phantom, self.events_lost,
                                    self.events_doubled, self.effects_lost,
                                    self.effects_doubled)) + self.undelivered


def account_payments(answered: Iterable[str], attempted: Iterable[str],
                     payments: Mapping[str, int], events: Mapping[str, int],
                     effects: Mapping[str, int], undelivered: int = 0) -> PaymentAccount:
    """``answered``: references answered 2xx; ``attempted``: every reference sent (answered or
    not); ``payments`` / ``events`` / ``effects``: rows per reference in the payments table,
    PAYMENT_RECEIVED events and the payments' timeline actions. A reference whose request
    failed may be stored once or not at all; it must never be stored twice."""
    answered, attempted = set(answered), set(attempted)
    account = PaymentAccount(answered=len(answered), unanswered=len(attempted - answered),
                             undelivered=undelivered)
    for ref in sorted(answered):
        if payments.get(ref, 0) == 0:
            account.lost.append(ref)
    for ref, count in sorted(payments.items()):
        if count > 1:
            account.doubled.append(ref)
        if ref not in attempted:
            account.phantom.append(ref)
        if count >= 1:
            got = events.get(ref, 0)
            if got == 0:
                account.events_lost.append(ref)
            elif got > 1:
                account.events_doubled.append(ref)
            done = effects.get(ref, 0)
            if got and done == 0:
                account.effects_lost.append(ref)
            elif done > 1:
                account.effects_doubled.append(ref)
    return account


DELIVERY_JOB = re.compile(r"^ev-(?P<event>[0-9a-f]{32})-(?P<subscriber>[0-9a-f]{12})(?:-.*)?$")


@dataclass
class KilledJob:
    job_id: str
    outcome: str  # "once", "twice or more", "not finished", "not a delivery (…)"
    ok: bool | None  # None: not judged (not an event delivery)


def judge_killed_jobs(job_ids: Iterable[str],
                      deliveries: Mapping[tuple[str, str], tuple[str, int]],
                      rq_status: Mapping[str, str | None] | None = None) -> list[KilledJob]:
    """The jobs the killed worker had started. An event delivery job (``ev-<event>-<sub>``,
    portal/events/relay.py) finished exactly once when its delivery row is ``delivered`` with
    ``attempts == 1``: the killed attempt was rolled back with its transaction and the handed-
    over job ran once. ``deliveries`` maps (event id hex, subscriber digest) to (status,
    attempts). Other jobs are reported with their RQ status, not judged."""
    judged = []
    for job_id in sorted(set(job_ids)):
        match = DELIVERY_JOB.match(job_id)
        if not match:
            status = (rq_status or {}).get(job_id)
            judged.append(KilledJob(job_id, f"not a delivery (RQ: {status or 'gone'})", None))
            continue
        row = deliveries.get((match["event"], match["subscriber"]))
        if row is None:
            judged.append(KilledJob(job_id, "no delivery row", False))
        elif row[0] != "delivered":
            judged.append(KilledJob(job_id, f"not finished ({row[0]})", False))
        elif row[1] != 1:
            judged.append(KilledJob(job_id, f"ran {row[1]} times", False))
        else:
            judged.append(KilledJob(job_id, "once", True))
    return judged


@dataclass
class Throughput:
    nodes: int  # of each kind
    requests: int
    seconds: float
    errors: int
    jobs: int
    job_seconds: float
    round: int = 1
    load: float = 0.0  # the machine's 1-minute load average when the run ended

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.job_seconds if self.job_seconds else 0.0


def best_runs(runs: Iterable[Throughput]) -> dict[int, dict[str, float]]:
    """Per number of nodes, the best requests/s and the best jobs/s over the rounds (the
    machine is shared: the least disturbed round is the closest to its capacity)."""
    best: dict[int, dict[str, float]] = {}
    for run in runs:
        b = best.setdefault(run.nodes, {"requests": 0.0, "jobs": 0.0})
        b["requests"] = max(b["requests"], run.requests_per_s)
        b["jobs"] = max(b["jobs"], run.jobs_per_s)
    return best


def ratio(two: float, one: float) -> float:
    return two / one if one else 0.0


@dataclass
class Verdict:
    failed_requests: int
    payments: PaymentAccount
    killed_jobs: list[KilledJob]
    gps_lost: int = 0
    balancer: Mapping[str, int] = field(default_factory=dict)  # HAProxy's backend counters

    @property
    def killed_jobs_wrong(self) -> int:
        return sum(1 for j in self.killed_jobs if j.ok is False)

    @property
    def ok(self) -> bool:
        return (self.failed_requests == 0 and self.payments.problems == 0
                and self.killed_jobs_wrong == 0 and self.gps_lost == 0)


def _cell(values: list[str]) -> str:
    if not values:
        return "0"
    shown = ", ".join(values[:3]) + (" …" if len(values) > 3 else "")
    return f"**{len(values)}** ({shown})"


def render_report(verdict: Verdict, runs: list[Throughput], *, when: str, machine: str,
                  chaos: str, notes: Iterable[str] = ()) -> list[str]:
    """The lines of docs/performance.md's "Cluster" block (also printed)."""
    p = verdict.payments
    judged = [j for j in verdict.killed_jobs if j.ok is not None]
    once = sum(1 for j in judged if j.ok)
    lines = [
        f"Last run: {when}. `make cluster-test`: {machine}",
        "",
        f"Chaos run: {chaos}",
        "",
        "| check | result | must be |",
        "|---|---|---|",
        f"| requests failed beyond the client's retries | {verdict.failed_requests} | 0 |",
        f"| payments answered 2xx / requests failed (not judged lost) | {p.answered:,} / "
        f"{p.unanswered} | — |",
        f"| payments lost (answered, no row) | {_cell(p.lost)} | 0 |",
        f"| payments doubled (two rows, one reference) | {_cell(p.doubled)} | 0 |",
        f"| payments stored that were never sent | {_cell(p.phantom)} | 0 |",
        f"| PAYMENT_RECEIVED events lost / doubled | {_cell(p.events_lost)} / "
        f"{_cell(p.events_doubled)} | 0 / 0 |",
        f"| payment effects (timeline action) lost / doubled | {_cell(p.effects_lost)} / "
        f"{_cell(p.effects_doubled)} | 0 / 0 |",
        f"| event deliveries of these payments not delivered | {p.undelivered} | 0 |",
        f"| GPS points answered but not stored | {verdict.gps_lost} | 0 |",
        f"| killed worker's delivery jobs finished exactly once | {once} of {len(judged)} "
        f"| all |",
    ]
    if verdict.balancer:
        b = verdict.balancer
        lines.append(f"| HAProxy (backend web): connection errors / response errors / retries / "
                     f"redispatches | {b.get('econ', 0)} / {b.get('eresp', 0)} / "
                     f"{b.get('wretr', 0)} / {b.get('wredis', 0)} | — |")
    others = [j for j in verdict.killed_jobs if j.ok is None]
    if others:
        lines.append(f"| killed worker's other jobs (not judged) | "
                     f"{'; '.join(f'`{j.job_id}` {j.outcome}' for j in others[:4])} | — |")
    lines += [
        "",
        f"**Verdict: {'PASS' if verdict.ok else 'FAIL'}**",
        "",
        "Throughput, saturating closed loop through HAProxy (requests) and draining the "
        "payments' event backlog (jobs):",
        "",
        "| nodes (web + worker) | round | requests | seconds | requests/s | errors | jobs "
        "| jobs/s | load average |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(f"| {run.nodes} + {run.nodes} | {run.round} | {run.requests:,} "
                     f"| {run.seconds:.0f} | {run.requests_per_s:.1f} | {run.errors} "
                     f"| {run.jobs:,} | {run.jobs_per_s:.1f} | {run.load:.1f} |")
    best = best_runs(runs)
    if 1 in best and 2 in best:
        one, two = best[1], best[2]
        lines += ["", f"Best of each (the least disturbed round): 1 + 1 "
                  f"{one['requests']:.1f} requests/s, {one['jobs']:.1f} jobs/s; 2 + 2 "
                  f"{two['requests']:.1f} requests/s, {two['jobs']:.1f} jobs/s. Ratio 2 nodes ÷ "
                  f"1 node: requests/s ×{ratio(two['requests'], one['requests']):.2f}, jobs/s ×"
                  f"{ratio(two['jobs'], one['jobs']):.2f}."]
    lines += ["", *notes] if notes else []
    return lines


HAPROXY_COUNTERS = {"econ": 13, "eresp": 14, "wretr": 15, "wredis": 16}


def balancer_counters(csv: str, backend: str = "web") -> dict[str, int]:
    """The BACKEND row's error and retry counters from HAProxy's stats CSV."""
    for line in csv.splitlines():
        cells = line.split(",")
        if len(cells) > 17 and cells[0] == backend and cells[1] == "BACKEND":
            return {name: int(cells[i] or 0) for name, i in HAPROXY_COUNTERS.items()}
    return {}


def counts(rows: Iterable[tuple[str, int]]) -> Counter:
    out: Counter = Counter()
    for key, n in rows:
        out[key] += n
    return out
