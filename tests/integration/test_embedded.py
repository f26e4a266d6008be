"""The embedded PostgreSQL and Redis: start, reuse, stop, restart — and nothing left running."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from redis import Redis

from portal import embedded


def _processes_using(path: Path) -> list[str]:
    """Command lines of live processes that mention ``path`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if str(path) in cmdline and state != "Z":
            found.append(cmdline)
    return found


@pytest.fixture
def instance_dir():
    # not under pytest's tmp_path: as root the server runs as another user, who cannot enter
    # /tmp/pytest-of-root (mode 0700)
    base = Path(tempfile.mkdtemp(prefix="crm-embedded-test-"))
    base.chmod(0o755)
    directory = base / "inst"
    yield directory
    embedded.stop_instance(directory)
    shutil.rmtree(base, ignore_errors=True)


def test_start_reuse_stop_restart(instance_dir):
    services = embedded.start(instance_dir, dbname="embedded_check")
    try:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("embedded_check",)
        with Redis.from_url(services.redis_url) as client:
            assert client.ping()

        again = embedded.start(instance_dir, dbname="embedded_check")  # reuses both servers
        assert again.redis_url == services.redis_url
        assert again.redis_pid == services.redis_pid
        assert "postgres running" in embedded.status(instance_dir)[0]
    finally:
        embedded.stop(services)

    assert _processes_using(instance_dir) == []  # postgres names its data directory
    assert not embedded._pid_alive(services.redis_pid)  # redis-server only its port

    restarted = embedded.start(instance_dir, dbname="embedded_check")  # data kept
    try:
        with psycopg.connect(restarted.database_url, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        assert embedded.stop_instance(instance_dir)  # reports what it stopped
    assert _processes_using(instance_dir) == []


def test_only_redis(instance_dir):
    services = embedded.start(instance_dir, postgres=False)
    try:
        assert services.database_url is None and services.pgdata is None
        with Redis.from_url(services.redis_url) as client:
            assert client.ping()
        assert not (instance_dir / "postgres").exists()
    finally:
        embedded.stop(services)
    assert not embedded._pid_alive(services.redis_pid)


def test_stop_instance_when_nothing_runs(tmp_path):
    assert embedded.stop_instance(tmp_path / "absent") == []
    assert embedded.main(["status", str(tmp_path / "absent")]) == 0
    assert embedded.main(["bogus"]) == 2
