"""``make cluster-test`` (``sudo .venv/bin/python -m tests.cluster.run``): the portal as several
nodes, proven (issue 24 §6).

Two web nodes (gunicorn, portal/gunicorn_conf.py) and two worker nodes (``flask workers run
--with-scheduler``), each a process tree in its own network namespace with its own address on a
bridge; Debian's HAProxy in the root namespace in front of the web nodes (health checks on
/health, retries, redispatch) and forwarding the machine's loopback-only PostgreSQL and Redis
onto the bridge (one database ``crm_cluster``, one Redis DB 7). The database is rebuilt each
run (migrations, ``flask seed-demo``).

1. Throughput, 1 web + 1 worker, then 2 + 2: a saturating closed loop of the load mix's
   requests through HAProxy with no worker running (requests/s), then the worker nodes start
   and drain the event backlog those payments left (jobs/s = deliveries / first-to-last).
2. Chaos, 2 + 2: the load mix (tests/load/mix.py) at stated rates through HAProxy, with a
   client that retries (urllib3: connection errors, 502/503/504); meanwhile one worker node
   is SIGKILLed while it runs an event delivery and one web node is SIGKILLed, both restarted
   later. Then: requests failed beyond the retries, payments / events / effects lost or
   doubled, the killed worker's jobs finished exactly once (tests/cluster/plan.py).

Prints the report, writes it to docs/performance.md ("Cluster") and exits 1 when a must-be-0
check fails. Namespaces, links and processes are removed on exit, on failure and on Ctrl-C.
Environment: CLUSTER_DATABASE (crm_cluster), CLUSTER_REDIS_DB (7), CLUSTER_PG / CLUSTER_REDIS
(127.0.0.1:5432 / 127.0.0.1:6379), CLUSTER_CHAOS_SECONDS (80), CLUSTER_SATURATE_SECONDS (25),
CLUSTER_CUSTOMERS (400),
CLUSTER_ROUNDS (2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tests.cluster import plan as P
from tests.load.mix import (
    GPS_BATCH,
    GPS_OSMAND,
    TIMEOUT_S,
    MixedLoad,
    _Failed,
)

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
LOGS = ROOT / "build" / "cluster"
DATABASE = os.environ.get("CLUSTER_DATABASE", "crm_cluster")
REDIS_DB = int(os.environ.get("CLUSTER_REDIS_DB", "7"))
PG = os.environ.get("CLUSTER_PG", "127.0.0.1:5432")
REDIS = os.environ.get("CLUSTER_REDIS", "127.0.0.1:6379")
CHAOS_SECONDS = float(os.environ.get("CLUSTER_CHAOS_SECONDS", "80"))
SATURATE_SECONDS = float(os.environ.get("CLUSTER_SATURATE_SECONDS", "25"))
CUSTOMERS = int(os.environ.get("CLUSTER_CUSTOMERS", "400"))
ROUNDS = int(os.environ.get("CLUSTER_ROUNDS", "2"))  # of 1 + 1 then 2 + 2, interleaved
PAYMENT_SECRET = "cluster-payments-secret"
CHAOS_RATES = {  # requests per second, as tests/load/test_load_mix.py × 1.5
    "login": 0.5, "work queue": 2.0, "case view": 3.0, "search": 1.5,
    "payment webhook": 6.0, "gps batch": 1.5, "gps osmand": 6.0, "health": 1.5,
}
SATURATE_MIX = ("case view", "payment webhook", "work queue", "gps osmand", "payment webhook",
                "search", "case view", "payment webhook", "gps batch", "health")
DRAIN_TIMEOUT_S = 180


def say(text: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(cmd: list[str], *, check: bool = True, env: dict | None = None,
        quiet: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    if not quiet and result.returncode != 0:
        say(f"(ignored) {' '.join(cmd)}: {result.stderr.strip()[:200]}")
    return result


# -- processes ----------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (work horses and schedulers have process groups of their
    own, so a killpg alone would miss them)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    tree = [pid, *children(pid)]
    if sig == signal.SIGKILL:  # freeze first, so nothing forks or takes over in between
        for p in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGSTOP)
        tree = [pid, *children(pid)]
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, sig)


class NodeProcess:
    """One node: its command run inside its namespace, in a session of its own."""

    def __init__(self, node: P.Node, env: dict[str, str]):
        self.node, self.env = node, env
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.worker_name = ""
        self._log = None

    def command(self) -> list[str]:
        if self.node.kind == "web":
            return [PY, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf", "--chdir",
                    str(ROOT), "-b", f"{self.node.address}:{P.Ports().web}",
                    "--access-logfile", "/dev/null", "--log-level", "warning", "wsgi:app"]
        return [PY, "-m", "flask", "--app", "wsgi", "workers", "run", "--with-scheduler",
                "--name", self.worker_name]

    def start(self) -> None:
        self.generation += 1
        self.worker_name = f"{self.node.name}-{self.generation}-{os.getpid()}"
        LOGS.mkdir(parents=True, exist_ok=True)
        self._log = (LOGS / f"{self.node.name}-{self.generation}.log").open("wb")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.node.netns, *self.command()],
                                     env=self.env, cwd=ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, the whole process tree (gunicorn's workers; the work horse, the cron
        scheduler and RQ's scheduler of a worker)."""
        if self.proc is not None:
            kill_tree(self.proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            kill_tree(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):  # anything left behind
            for p in children(self.proc.pid):
                os.kill(p, signal.SIGKILL)
        if self._log:
            self._log.close()
        self.proc = None

    def tail(self, lines: int = 15) -> str:
        path = LOGS / f"{self.node.name}-{self.generation}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# -- the load client with retries ---------------------------------------------------------------

RETRY = Retry(total=6, connect=5, read=2, status=5, backoff_factor=0.25,
              status_forcelist=(502, 503, 504), allowed_methods=None, raise_on_status=False,
              respect_retry_after_header=False)


TRANSIENT = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)


def retrying_session() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=RETRY, pool_maxsize=32)
    session.mount("http://", adapter)
    return session


class RetryingLoad(MixedLoad):
    """The load mix with a client that retries (connection errors, 502/503/504: what a payment
    system or a phone does), recording which payment references were sent and answered and how
    many GPS points were accepted. Payment notifications are idempotent: a retried one that had
    been stored is answered 200 (duplicate) instead of 201."""

    def __init__(self, *args, shift_hours: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        # each load of the run sends GPS points of its own hours (the portal refuses a point it
        # already holds as a duplicate)
        self._batch_base -= timedelta(hours=shift_hours)
        self._osmand_base -= timedelta(hours=shift_hours)
        self.attempted: set[str] = set()
        self.answered: set[str] = set()
        self.points = 0
        self._mutex = threading.Lock()

    def new_session(self) -> requests.Session:
        return retrying_session()

    def _again(self, call: Callable[[], int]) -> int:
        """The client's own retry of what urllib3 cannot retry: a response cut off while its
        body was read (the node died mid-answer)."""
        for attempt in range(3):
            try:
                return call()
            except TRANSIENT:
                if attempt == 2:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def do_queue(self, i: int) -> int:
        return self._again(lambda: MixedLoad.do_queue(self, i))

    def do_case(self, i: int) -> int:
        return self._again(lambda: MixedLoad.do_case(self, i))

    def do_search(self, i: int) -> int:
        return self._again(lambda: MixedLoad.do_search(self, i))

    def do_health(self, i: int) -> int:
        return self._again(lambda: MixedLoad.do_health(self, i))

    def do_payment(self, i: int) -> int:
        ref = f"LOAD-{self.tag}-{i}"
        with self._mutex:
            self.attempted.add(ref)

        def once() -> int:
            try:
                return MixedLoad.do_payment(self, i)
            except _Failed as exc:
                if not str(exc).startswith("200 "):  # a retried duplicate: stored once
                    raise
                return 200

        status = self._again(once)
        with self._mutex:
            self.answered.add(ref)
        return status

    def _points(self, response: requests.Response, size: int) -> int:
        """Accepted points; a point the portal already holds is one this client sent before
        its retry (each load has hours of its own)."""
        body = response.json() if response.status_code == 200 else {}
        if body.get("accepted", 0) + body.get("duplicates", 0) != size:
            raise _Failed(f"{response.status_code} {response.text[:200]}")
        with self._mutex:
            self.points += body["accepted"]
        return response.status_code

    def do_gps_batch(self, i: int) -> int:
        token, points = self.gps_batch(i)
        return self._again(lambda: self._points(self._http().post(
            self.url + GPS_BATCH, json={"points": points},
            headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S), len(points)))

    def do_osmand(self, i: int) -> int:
        tokens = self.world.field_tokens
        at = self._osmand_base + timedelta(seconds=i // len(tokens))
        params = {"token": tokens[i % len(tokens)], "lat": f"{10.78 + (i % 97) * 1e-4:.6f}",
                  "lon": f"{106.70 + (i % 89) * 1e-4:.6f}", "timestamp": int(at.timestamp()),
                  "accuracy": 12, "speed": 3.1, "bearing": 180, "batt": 64}
        return self._again(lambda: self._points(self._http().post(
            self.url + GPS_OSMAND, params=params, timeout=TIMEOUT_S), 1))


def saturate(load: RetryingLoad, seconds: float, threads: int) -> tuple[int, int, float]:
    """A closed loop: ``threads`` clients, each sending the next request of SATURATE_MIX as
    soon as the last one is answered. Returns (answered, failed, seconds)."""
    counter = itertools.count()
    ok, failed = [0] * threads, [0] * threads
    deadline = time.monotonic() + seconds

    def client(k: int) -> None:
        while time.monotonic() < deadline:
            n = next(counter)
            name = SATURATE_MIX[n % len(SATURATE_MIX)]
            try:
                getattr(load, load.HANDLERS[name])(n)
                ok[k] += 1
            except Exception:
                failed[k] += 1

    started = time.monotonic()
    pool = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(ok), sum(failed), time.monotonic() - started


# -- the cluster --------------------------------------------------------------------------------


@dataclass
class Services:
    database_url: str  # from the root namespace (the orchestrator)
    node_database_url: str  # from a namespace, through the forward on the bridge
    redis_url: str
    node_redis_url: str


class Cluster:
    def __init__(self, topology: P.Topology):
        self.topology = topology
        self.haproxy: subprocess.Popen | None = None
        self.nodes: dict[str, NodeProcess] = {}
        self.network_up = False
        g = topology.gateway
        ports = P.Ports()
        self.url = f"http://{g}:{ports.http}"
        self.services = Services(
            database_url=f"postgresql://postgres@{PG}/{DATABASE}",
            node_database_url=f"postgresql://postgres@{g}:{ports.postgres}/{DATABASE}",
            redis_url=f"redis://{REDIS}/{REDIS_DB}",
            node_redis_url=f"redis://{g}:{ports.redis}/{REDIS_DB}")

    # network
    def network(self) -> None:
        self.teardown_network(quiet=True)  # what a killed earlier run left
        self.network_up = True
        for cmd in P.setup_commands(self.topology):
            run(cmd)

    def teardown_network(self, quiet: bool = False) -> None:
        for node in self.topology.nodes:  # processes an earlier, killed run left in them
            pids = run(["ip", "netns", "pids", node.netns], check=False, quiet=True).stdout
            for pid in pids.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        for cmd in P.teardown_commands(self.topology):
            run(cmd, check=False, quiet=True)
        self.network_up = False

    # haproxy
    def start_haproxy(self, webs: int) -> None:
        self.stop_haproxy()
        stale = LOGS / "haproxy.pid"  # an earlier, killed run's HAProxy holds the addresses
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            pid = int(stale.read_text())
            if b"haproxy" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        LOGS.mkdir(parents=True, exist_ok=True)
        config = LOGS / "haproxy.cfg"
        config.write_text(P.render_haproxy(self.topology, postgres=PG, redis=REDIS,
                                           webs=self.topology.of_kind("web")[:webs]))
        run(["haproxy", "-c", "-q", "-f", str(config)])
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)],
                                        stdout=(LOGS / "haproxy.log").open("ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        (LOGS / "haproxy.pid").write_text(str(self.haproxy.pid))
        time.sleep(0.5)
        if self.haproxy.poll() is not None:
            raise RuntimeError(f"haproxy exited: {(LOGS / 'haproxy.log').read_text()[-1000:]}")

    def stop_haproxy(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait(5)
        self.haproxy = None

    # nodes
    def node_env(self) -> dict[str, str]:
        s = self.services
        keep = {k: v for k, v in os.environ.items()
                if k in ("PATH", "LANG", "LC_ALL", "HOME", "TZ")}
        return {**keep, "PORTAL_ENV": "production", "PYTHONPATH": str(ROOT),
                "DATABASE_URL": s.node_database_url, "REDIS_URL": s.node_redis_url,
                "SECRET_KEY": "cluster-test-secret-the-same-on-every-node",
                "SESSION_COOKIE_SECURE": "0", "LOG_LEVEL": "WARNING",
                "PAYMENT_WEBHOOK_SECRETS": PAYMENT_SECRET,
                "LOGIN_RATE_LIMIT": "6000 per minute", "PROXY_FIX_HOPS": "1",
                "FORWARDED_ALLOW_IPS": self.topology.gateway,
                "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "DB_POOL_OVERFLOW": "4",
                "EVENTS_STALE_AFTER": "10"}

    def node(self, name: str) -> NodeProcess:
        if name not in self.nodes:
            self.nodes[name] = NodeProcess(self.topology.node(name), self.node_env())
        return self.nodes[name]

    def start(self, name: str) -> NodeProcess:
        proc = self.node(name)
        proc.start()
        return proc

    def wait_web(self, name: str, timeout: float = 90) -> None:
        node, proc = self.topology.node(name), self.nodes[name]
        url = f"http://{node.address}:{P.Ports().web}/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive:
                raise RuntimeError(f"{name} exited:\n{proc.tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=3).status_code == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{name} did not answer /health in {timeout:.0f} s:\n{proc.tail()}")

    def wait_balanced(self, webs: int, timeout: float = 30) -> None:
        """Until every web server is UP in HAProxy (its stats page, CSV)."""
        url = f"http://{self.topology.gateway}:{P.Ports().stats}/;csv"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                rows = [r.split(",") for r in requests.get(url, timeout=3).text.splitlines()]
                up = [r for r in rows if len(r) > 17 and r[0] == "web"
                      and r[1] not in ("FRONTEND", "BACKEND") and r[17].startswith("UP")]
                if len(up) >= webs:
                    return
            time.sleep(0.3)
        raise RuntimeError("HAProxy does not see the web nodes up")

    def stop_nodes(self) -> None:
        for proc in self.nodes.values():
            proc.stop()

    def close(self) -> None:
        for proc in self.nodes.values():
            with contextlib.suppress(Exception):
                proc.stop()
        self.stop_haproxy()
        if self.network_up:
            self.teardown_network()


# -- the database -------------------------------------------------------------------------------


def rebuild_database(services: Services) -> None:
    import psycopg
    from redis import Redis

    maintenance = services.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    Redis.from_url(services.redis_url).flushdb()
    env = {**os.environ, "PORTAL_ENV": "production", "DATABASE_URL": services.database_url,
           "REDIS_URL": services.redis_url, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    say("migrating (flask db upgrade)")
    run([PY, "-m", "flask", "--app", "wsgi", "db", "upgrade"], env=env)
    say(f"seeding (flask seed-demo --customers {CUSTOMERS})")
    run([PY, "-m", "flask", "--app", "wsgi", "seed-demo", "--customers", str(CUSTOMERS),
         "--loans", str(CUSTOMERS * 3 // 2)], env=env)


class Store:
    """The orchestrator's own view of the database and Redis (from the root namespace)."""

    def __init__(self, services: Services):
        os.environ.update({"PORTAL_ENV": "production", "DATABASE_URL": services.database_url,
                           "REDIS_URL": services.redis_url, "LOG_LEVEL": "WARNING",
                           "PAYMENT_WEBHOOK_SECRETS": PAYMENT_SECRET})
        from portal import create_app
        from portal.extensions import db

        self.app = create_app()
        self.db = db
        self.ctx = self.app.app_context()
        self.ctx.push()
        from redis import Redis
        self.redis = Redis.from_url(services.redis_url)

    def world(self):
        from tests.load.world import build_world

        world = build_world(self.db, agents=8, field_agents=4, gps_batch_points=20)
        return dataclasses.replace(world, payment_secret=PAYMENT_SECRET)

    def scalar(self, sql: str, **params):
        from sqlalchemy import text
        try:
            return self.db.session.scalar(text(sql), params)
        finally:
            self.db.session.rollback()

    def rows(self, sql: str, **params) -> list:
        from sqlalchemy import text
        try:
            return list(self.db.session.execute(text(sql), params).all())
        finally:
            self.db.session.rollback()

    def backlog(self) -> int:
        return self.scalar(
            "SELECT (SELECT count(*) FROM events WHERE relayed_at IS NULL) + "
            "(SELECT count(*) FROM event_deliveries WHERE status <> 'delivered')")

    def drain(self, since: datetime, timeout: float = DRAIN_TIMEOUT_S) -> tuple[int, float]:
        """Wait until no event is unrelayed and no delivery undelivered; (deliveries delivered
        since ``since``, seconds from the first to the last of them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.backlog():
            time.sleep(0.5)
        left = self.backlog()
        if left:
            say(f"!! {left} events/deliveries still waiting after {timeout:.0f} s")
        row = self.rows("SELECT count(*), extract(epoch FROM max(delivered_at) - "
                        "min(delivered_at)) FROM event_deliveries WHERE delivered_at >= :s",
                        s=since.replace(tzinfo=None))[0]
        return int(row[0]), float(row[1] or 0.0)

    def points(self) -> int:
        return self.scalar("SELECT count(*) FROM agent_locations")

    def started_jobs(self, worker_name: str) -> list[str]:
        """Job ids in the queues' started registries that ``worker_name`` runs."""
        from rq.registry import StartedJobRegistry

        from portal.queues import QUEUE_NAMES

        found = []
        for queue in QUEUE_NAMES:
            registry = StartedJobRegistry(queue, connection=self.redis)
            for job_id in registry.get_job_ids(cleanup=False):
                owner = self.redis.hget(f"rq:job:{job_id}", "worker_name")
                if owner and owner.decode() == worker_name:
                    found.append(job_id)
        return found


def now_db() -> datetime:
    from portal.models.base import utcnow
    return utcnow()


# -- the run ------------------------------------------------------------------------------------


def throughput(cluster: Cluster, store: Store, world, nodes: int,
               round_: int) -> P.Throughput:
    webs = [f"web{i}" for i in range(1, nodes + 1)]
    workers = [f"worker{i}" for i in range(1, nodes + 1)]
    cluster.start_haproxy(webs=nodes)
    for name in webs:
        cluster.start(name)
    for name in webs:
        cluster.wait_web(name)
    cluster.wait_balanced(nodes)
    load = RetryingLoad(cluster.url, world, {"health": 1.0}, sessions=12,
                        shift_hours=3 * (2 * round_ + nodes))
    load.prepare()
    say(f"{nodes} + {nodes}: saturating closed loop, {SATURATE_SECONDS:.0f} s, 12 clients")
    answered, failed, seconds = saturate(load, SATURATE_SECONDS, threads=12)
    say(f"{nodes} + {nodes}: {answered} requests in {seconds:.1f} s "
        f"({answered / seconds:.1f}/s), {failed} failed; {store.backlog()} events waiting")
    since = now_db()
    for name in workers:
        cluster.start(name)
    jobs, job_seconds = store.drain(since)
    say(f"{nodes} + {nodes}: {jobs} deliveries in {job_seconds:.1f} s "
        f"({jobs / job_seconds if job_seconds else 0:.1f}/s)")
    return P.Throughput(nodes=nodes, requests=answered, seconds=seconds, errors=failed,
                        jobs=jobs, job_seconds=job_seconds, round=round_,
                        load=os.getloadavg()[0])


def chaos(cluster: Cluster, store: Store, world) -> tuple[P.Verdict, str]:
    load = RetryingLoad(cluster.url, world, CHAOS_RATES, sessions=16, shift_hours=0)
    load.prepare()
    points_before = store.points()
    killed: dict[str, list[str]] = {"jobs": []}
    timeline: list[str] = []
    t0 = time.monotonic()

    def mark(text: str) -> None:
        timeline.append(f"{time.monotonic() - t0:.0f} s {text}")
        say(text)

    def killer() -> None:
        time.sleep(CHAOS_SECONDS * 0.25)
        worker, web = cluster.nodes["worker1"], cluster.nodes["web1"]
        name = worker.worker_name
        # wait for an event delivery in its hands (the jobs whose exactly-once is checked);
        # after 20 s, kill it with whatever it holds
        deadline = time.monotonic() + 20
        caught: list[str] = []
        while time.monotonic() < deadline:
            caught = store.started_jobs(name)
            if any(P.DELIVERY_JOB.match(j) for j in caught):
                break
            time.sleep(0.002)
        worker.kill()
        killed["jobs"] = sorted(set(caught) | set(store.started_jobs(name)))
        mark(f"SIGKILL worker1 ({name}) with {len(killed['jobs'])} job(s) started: "
             f"{', '.join(killed['jobs'][:3])}")
        web.kill()
        mark("SIGKILL web1 (gunicorn master and workers)")
        time.sleep(CHAOS_SECONDS * 0.2)
        cluster.start("web1")
        cluster.start("worker1")
        cluster.wait_web("web1")
        mark("web1 and worker1 restarted")

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    say(f"chaos: the load mix at {sum(CHAOS_RATES.values()):g} requests/s for "
        f"{CHAOS_SECONDS:.0f} s through HAProxy")
    result = load.run(CHAOS_SECONDS)
    thread.join()
    say(f"chaos: {result.requests} requests, {result.errors} failed beyond retries; draining")
    balancer = {}
    with contextlib.suppress(requests.RequestException):
        balancer = P.balancer_counters(requests.get(
            f"http://{cluster.topology.gateway}:{P.Ports().stats}/;csv", timeout=5).text)
    store.drain(datetime(2000, 1, 1))
    for name, t in result.types.items():
        if t.error_samples:
            say(f"   {name}: {t.errors} errors, e.g. {t.error_samples[:2]}")

    like = f"LOAD-{load.tag}-%"
    payments = P.counts(store.rows(
        "SELECT reference_number, count(*) FROM payments WHERE reference_number LIKE :p "
        "GROUP BY 1", p=like))
    events = P.counts(store.rows(
        "SELECT payload->>'reference_number', count(*) FROM events "
        "WHERE type = 'PAYMENT_RECEIVED' AND payload->>'reference_number' LIKE :p GROUP BY 1",
        p=like))
    effects = P.counts(store.rows(
        "SELECT substring(notes FROM '\\(ref (LOAD-[^)]+)\\)'), count(*) FROM actions "
        "WHERE type = 'SYSTEM' AND subtype = 'PAYMENT' AND result = 'RECEIVED' "
        "AND notes LIKE :p GROUP BY 1", p=f"%{like}"))
    undelivered = store.scalar(
        "SELECT count(*) FROM event_deliveries d JOIN events e ON e.id = d.event_id "
        "WHERE e.type = 'PAYMENT_RECEIVED' AND e.payload->>'reference_number' LIKE :p "
        "AND d.status <> 'delivered'", p=like)
    account = P.account_payments(load.answered, load.attempted, payments, events, effects,
                                 undelivered)
    deliveries = {}
    for event_id, subscriber, status, attempts in store.rows(
            "SELECT event_id::text, subscriber, status, attempts FROM event_deliveries "
            "WHERE event_id = ANY(CAST(:ids AS uuid[]))",
            ids=[m["event"] for j in killed["jobs"] if (m := P.DELIVERY_JOB.match(j))]):
        digest = hashlib.sha1(subscriber.encode()).hexdigest()[:12]
        deliveries[(event_id.replace("-", ""), digest)] = (status, attempts)
    rq_status = {}
    for job_id in killed["jobs"]:
        status, what = store.redis.hmget(f"rq:job:{job_id}", "status", "description")
        rq_status[job_id] = (f"{status.decode() if status else 'gone'}, "
                             f"{what.decode()[:60] if what else '?'}")
    judged = P.judge_killed_jobs(killed["jobs"], deliveries, rq_status)
    stored_points = store.points() - points_before
    verdict = P.Verdict(failed_requests=result.errors, payments=account, killed_jobs=judged,
                        gps_lost=max(0, load.points - stored_points), balancer=balancer)
    text = (f"{CHAOS_SECONDS:.0f} s of the load mix at {sum(CHAOS_RATES.values()):g} "
            f"requests/s stated ({result.requests:,} requests, {len(load.attempted):,} payments,"
            f" {load.points:,} GPS points answered, {stored_points:,} stored); "
            + "; ".join(timeline) + ".")
    return verdict, text


def machine() -> str:
    load = os.getloadavg()
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), load "
            f"average {load[0]:.2f} at the end; PostgreSQL and Redis shared with other "
            "sessions running tests at the same time (noise)")


def ensure_haproxy() -> None:
    if shutil.which("haproxy"):
        return
    say("haproxy is missing: apt-get install -y haproxy")
    run(["apt-get", "install", "-y", "haproxy"])
    if not shutil.which("haproxy"):
        raise SystemExit("haproxy could not be installed")
    run(["systemctl", "disable", "--now", "haproxy"], check=False, quiet=True)


def main() -> int:
    if os.geteuid() != 0:
        print("make cluster-test needs root (network namespaces, veth, a bridge)",
              file=sys.stderr)
        return 2
    for tool in ("ip",):
        if not shutil.which(tool):
            print(f"{tool} is missing (iproute2)", file=sys.stderr)
            return 2
    ensure_haproxy()
    started = time.monotonic()
    cluster = Cluster(P.plan(webs=2, workers=2))

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    try:
        say("network: a bridge and 4 namespaces")
        cluster.network()
        rebuild_database(cluster.services)
        store = Store(cluster.services)
        world = store.world()
        runs = []
        order = [(r, n) for r in range(1, ROUNDS + 1) for n in (1, 2)]
        for k, (round_, nodes) in enumerate(order):
            runs.append(throughput(cluster, store, world, nodes, round_))
            if k < len(order) - 1:  # the last (2 + 2) stays up for the chaos run
                cluster.stop_nodes()
        verdict, chaos_text = chaos(cluster, store, world)
        lines = P.render_report(
            verdict, runs, when=f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}", machine=machine(),
            chaos=chaos_text,
            notes=[f"Whole run {time.monotonic() - started:.0f} s. Web node: gunicorn -w 2 "
                   "--threads 4 (portal/gunicorn_conf.py); worker node: `flask workers run "
                   "--with-scheduler` (PortalWorker). Load client, HAProxy, PostgreSQL, Redis "
                   "and every node share the same 2 cores: a second node adds processes, not "
                   "CPU, so what the ratio gains comes from more processes overlapping their "
                   "waits on PostgreSQL and Redis, not from more cores; on separate machines "
                   "each node brings its own cores. The rounds differ with what the other "
                   "sessions on the machine ran at the time (load average column)."])
        print("\n" + "\n".join(lines))
        from tests.benchmarks.summary import write_detail
        write_detail("cluster-benchmark", "Cluster", lines)
        say("written to docs/performance.md (Cluster)")
        return 0 if verdict.ok else 1
    except KeyboardInterrupt:
        say("interrupted: cleaning up")
        return 130
    finally:
        cluster.close()
        say("cleaned up: processes, HAProxy, namespaces, links")


if __name__ == "__main__":
    sys.exit(main())
