"""Run the whole portal on one machine, in one terminal: ``python -m portal.devrun`` (``make run``).

1. Without DATABASE_URL / REDIS_URL, start the embedded PostgreSQL and Redis (data under
   INSTANCE_DIR, default ``instance/``) and pass their URLs to every child process.
2. Apply the migrations (``flask db upgrade``) and load the demo data (``flask seed-demo``).
3. Start and supervise the web server, the RQ worker with the scheduler and the sandbox
   simulators. Every line they print goes to their log file under INSTANCE_DIR/logs/; the
   terminal shows warnings, errors and a status line every few seconds (portal/devlog.py;
   DEVRUN_VERBOSE=1 shows every line too, prefixed with the process name like honcho).
4. On Ctrl-C (SIGINT), SIGTERM or SIGHUP: SIGTERM every child, SIGKILL what is left after
   DEVRUN_GRACE_SECONDS, stop the embedded servers, exit 0.

A child that exits on its own is reported and the others keep running, except the web server:
without it there is nothing to use, so everything stops and devrun exits 1.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

from integrations.sandbox import SIMULATORS
from portal import devlog, embedded

ROOT = Path(__file__).resolve().parent.parent
DEMO_USERS = [
    ("admin", "admin"),
    ("ops", "ops"),
    ("sup1", "supervisor"),
    ("agent01", "agent"),
    ("field01", "field agent"),
]


@dataclass(frozen=True)
class ProcessSpec:
    """A long-running child: ``essential`` ones stop everything when they exit."""

    name: str
    argv: tuple[str, ...]
    essential: bool = False
    env: dict[str, str] = field(default_factory=dict)


def flask(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "flask", "--app", "wsgi", *args)


def web_process(host: str, port: int) -> ProcessSpec:
    return ProcessSpec(
        "web",
        (
            sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf",
            "-w", "2", "--threads", "4", "-b", f"{host}:{port}",
            "--access-logfile", "-", "--graceful-timeout", "5", "wsgi:app",
        ),
        essential=True,
    )


# cron expressions are read in the host's local time (RQ's rule): schedules are written in UTC
WORKER_PROCESS = ProcessSpec("worker", flask("workers", "run", "--with-scheduler"),
                             env={"TZ": "UTC"})

# Sandbox simulators of the external systems: every HTTP simulator registered in
# integrations.sandbox.SIMULATORS starts with `make run` beside the web server and the worker.
SANDBOX_PROCESSES: list[ProcessSpec] = [
    ProcessSpec(f"sim-{sim.name}", tuple(sim.command(sys.executable)))
    for sim in SIMULATORS
    if sim.kind in ("http", "smtp")
]


# ---------------------------------------------------------------------------- output

COLOURS = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"]
TERMINAL = devlog.Terminal()
STATUS_SECONDS = float(os.environ.get("DEVRUN_STATUS_SECONDS", "10"))
TAIL_LINES = 15  # of a process that exits or a step that fails, shown from its log


def emit(name: str, colour: str, text: str) -> None:
    TERMINAL.line(name, colour, text)


def say(text: str) -> None:
    """devrun's own messages (bold)."""
    for line in text.splitlines() or [""]:
        emit("devrun", "1", line)


def mask_password(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@/]+@", r"//\1:***@", url)


# ---------------------------------------------------------------------------- children


Output = Callable[[str, str, str], None]  # (process name, colour, line)


class Child:
    """One child process in its own session (so Ctrl-C reaches devrun only), its merged
    stdout/stderr pumped line by line to ``output`` (default: our stdout, with a coloured name
    prefix)."""

    def __init__(self, spec: ProcessSpec, colour: str, env: dict[str, str],
                 output: Output = emit):
        self.spec = spec
        self.colour = colour
        self.output = output
        self.tail: deque[str] = deque(maxlen=40)
        self.proc = subprocess.Popen(
            spec.argv,
            cwd=ROOT,
            env={**env, **spec.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._pump = threading.Thread(target=self._copy_output, daemon=True)
        self._pump.start()

    @property
    def name(self) -> str:
        return self.spec.name

    def _copy_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.tail.append(line)
            self.output(self.name, self.colour, line)
        self.proc.stdout.close()

    def running(self) -> bool:
        return self.proc.poll() is None

    def signal(self, signum: int, group: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(self.proc.pid, signum)
            elif self.running():
                self.proc.send_signal(signum)

    def finish(self) -> int:
        """Reap the child, kill whatever it left in its process group, flush its output."""
        code = self.proc.wait()
        self.signal(signal.SIGKILL, group=True)
        self._pump.join(timeout=5)
        return code

    def drain(self) -> None:
        """Wait (briefly) until the output of an exited child has been printed."""
        self._pump.join(timeout=2)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.tail)


class Supervisor:
    def __init__(self, env: dict[str, str], grace: float, output: Output = emit):
        self.env = env
        self.grace = grace
        self.output = output
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self.hurry = threading.Event()

    # signals: the first one asks for a clean stop, a second one skips the grace period
    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        if self.stopping.is_set():
            self.hurry.set()
            return
        self.stopping.set()

    def spawn(self, spec: ProcessSpec) -> Child:
        colour = COLOURS[len(self.children) % len(COLOURS)]
        child = Child(spec, colour, self.env, self.output)
        self.children.append(child)
        return child

    def run_step(self, name: str, argv: tuple[str, ...]) -> tuple[int | None, Child]:
        """Run a setup command to its end; ``None`` if a stop was asked for meanwhile."""
        child = self.spawn(ProcessSpec(name, argv))
        while child.running():
            if self.stopping.wait(0.1):
                return None, child
        code = child.finish()
        self.children.remove(child)
        return code, child

    def stop_all(self) -> None:
        alive = [c for c in self.children if c.running()]
        if alive:
            say("stopping " + ", ".join(c.name for c in alive) + " ...")
        for child in alive:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(c.running() for c in alive) and time.monotonic() < deadline:
            if self.hurry.wait(0.1):
                break
        for child in alive:
            if child.running():
                say(f"{child.name} did not stop in time: SIGKILL")
                child.signal(signal.SIGKILL, group=True)
        for child in self.children:
            child.finish()


# ---------------------------------------------------------------------------- the run


def local_host(host: str) -> str:
    """Where to reach a server bound to ``host`` from this machine."""
    return "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.3):
        return True
    return False


def banner(url: str, data_dir: str, log_dir: Path | None = None, verbose: bool = False) -> str:
    password = os.environ.get("DEMO_PASSWORD", "Demo@2026")
    lines = [
        "",
        f"Collection CRM is up:  {url}",
        "",
        "Demo logins (password: " + password + ")",
        *(f"  {user:<9} {role}" for user, role in DEMO_USERS),
        "",
        f"Data: {data_dir}",
    ]
    if log_dir is not None:
        lines += [
            f"Logs: {log_dir}/ (one file per process: web.log, worker.log, sim-*.log, …)",
            "This terminal: every line (DEVRUN_VERBOSE=1)" if verbose else
            f"This terminal: warnings, errors and a status line every {STATUS_SECONDS:g} s "
            "(DEVRUN_VERBOSE=1 shows every line)",
        ]
    lines += ["Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def show_tail(child: Child, router: devlog.OutputRouter | None) -> None:
    """The last lines of a process that exited or failed, when the terminal did not show them."""
    if router is None or router.verbose:
        return
    say(f"last lines of {child.name} (all of them in {router.where(child.name)}):")
    for line in list(child.tail)[-TAIL_LINES:]:
        emit(child.name, child.colour, line)


def command_line(spec: ProcessSpec) -> str:
    argv = list(spec.argv)
    if argv[1:5] == ["-m", "flask", "--app", "wsgi"]:
        argv = ["flask", *argv[5:]]
    return " ".join(argv)


def explain_exit(child: Child, code: int) -> str:
    if child.said("No such command"):
        return (
            f"{child.name} exited (code {code}): `{command_line(child.spec)}` does not exist "
            "yet. The other processes keep running."
        )
    return (
        f"{child.name} exited with code {code} (see its output above). "
        "The other processes keep running."
    )


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    instance_dir = Path(os.environ.get("INSTANCE_DIR") or ROOT / "instance").resolve()
    grace = float(os.environ.get("DEVRUN_GRACE_SECONDS", "10"))
    env = dict(os.environ)
    env.setdefault("PORTAL_ENV", "development")
    env["PYTHONUNBUFFERED"] = "1"
    # where the sandbox simulators send their webhooks (payments, call centre)
    env.setdefault("PORTAL_URL", f"http://{local_host(host)}:{port}")
    # the demo's customers pay now and then (the sandbox payment system sends signed webhooks)
    env.setdefault("PAYMENTS_SANDBOX_PAY_EVERY", "30")

    if port_open(local_host(host), port):
        say(f"something already answers on http://{local_host(host)}:{port}/ (another `make run`?)"
            ": stop it or choose another port, e.g. PORT=5055 make run")
        return 1

    verbose = os.environ.get("DEVRUN_VERBOSE", "0").lower() not in {"0", "", "false", "no"}
    router = devlog.OutputRouter(TERMINAL, instance_dir / "logs", verbose=verbose)
    supervisor = Supervisor(env, grace, output=router.line)
    supervisor.install_signal_handlers()

    services = None
    need_db, need_redis = not env.get("DATABASE_URL"), not env.get("REDIS_URL")
    if need_db or need_redis:
        what = " and ".join(n for n, needed in [("PostgreSQL", need_db), ("Redis", need_redis)]
                            if needed)
        say(f"starting embedded {what} (data in {instance_dir}) ...")
        try:
            services = embedded.start(instance_dir, postgres=need_db, redis=need_redis)
        except Exception as exc:  # show the cause plainly, not a traceback
            say(f"could not start the embedded servers: {exc!r}")
            say(f"logs: {instance_dir / 'postgres' / 'log'} and {instance_dir / 'redis'}")
            embedded.stop_dir(instance_dir)  # whichever of the two did start
            return 1
        if need_db:
            env["DATABASE_URL"] = services.database_url
        if need_redis:
            env["REDIS_URL"] = services.redis_url
    # the sandbox payment system's demo payers: open loans of the bank's book (this database)
    env.setdefault("PAYMENTS_SANDBOX_LOAN_BOOK_URL", env["DATABASE_URL"])
    say(f"DATABASE_URL={mask_password(env['DATABASE_URL'])}")
    say(f"REDIS_URL={mask_password(env['REDIS_URL'])}")
    data_dir = str(instance_dir) if services else "external PostgreSQL and Redis (see URLs above)"

    exit_code = 0
    try:
        exit_code = run(supervisor, host, port, data_dir, router, env["REDIS_URL"])
    finally:
        TERMINAL.end_status()
        supervisor.stop_all()
        router.close()
        if services:
            say("stopping embedded PostgreSQL and Redis ...")
            embedded.stop(services)
        say("all stopped.")
    return exit_code


def run(supervisor: Supervisor, host: str, port: int, data_dir: str,
        router: devlog.OutputRouter | None = None, redis_url: str | None = None) -> int:
    url_host = local_host(host)
    url = f"http://{url_host}:{port}/"
    if router is not None and router.log_dir is not None:
        say(f"every process logs to {router.log_dir}/")
    say("applying migrations: flask db upgrade")
    code, step = supervisor.run_step("migrate", flask("db", "upgrade"))
    if code is None:
        return 0
    if code != 0:
        show_tail(step, router)
        say(f"flask db upgrade failed (exit {code}): see the lines above. Not starting.")
        return 1

    if os.environ.get("SEED_DEMO", "1") not in {"0", "false", "no"}:
        say("loading demo data: flask seed-demo")
        code, step = supervisor.run_step("seed", flask("seed-demo"))
        if code is None:
            return 0
        if code != 0 and step.said("No such command"):
            say("`flask seed-demo` does not exist yet: starting without demo data.")
        elif code != 0:
            show_tail(step, router)
            say(f"flask seed-demo failed (exit {code}): see the lines above. "
                "Starting anyway; demo data may be missing.")

    for spec in [web_process(host, port), WORKER_PROCESS, *SANDBOX_PROCESSES]:
        supervisor.spawn(spec)

    redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2) \
        if redis_url and router is not None else None
    announced, reported = False, set()
    started = next_status = time.monotonic()
    while not supervisor.stopping.wait(0.25):
        if not announced and port_open(url_host, port):
            say(banner(url, data_dir, router.log_dir if router else None,
                       router.verbose if router else False))
            announced = True
            next_status = time.monotonic() + STATUS_SECONDS
        elif announced and redis is not None and time.monotonic() >= next_status:
            router.status(devlog.job_counts(redis))
            next_status = time.monotonic() + STATUS_SECONDS
        elif not announced and time.monotonic() - started > 120:
            say(f"the web server has not answered on {url} after 2 minutes; still waiting")
            started = time.monotonic()
        for child in supervisor.children:
            code = child.proc.poll()
            if code is None or child in reported:
                continue
            reported.add(child)
            child.drain()  # its last lines first, then our verdict
            show_tail(child, router)
            if child.spec.essential:
                say(f"{child.name} exited with code {code}: stopping everything.")
                return 1
            say(explain_exit(child, code))
    return 0


if __name__ == "__main__":
    sys.exit(main())
