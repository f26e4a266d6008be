"""The local process runner (``make run``): supervision, output prefixes, and a real run that
Ctrl-C stops without leaving a server behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from portal import devrun
from portal.devrun import ProcessSpec, Supervisor

ROOT = Path(__file__).resolve().parents[2]


def _py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def _live_cmdlines(needle: str) -> list[str]:
    """Command lines of live (non-zombie) processes containing ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            found.append(cmdline)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_output_is_prefixed_and_failures_are_reported(capsys):
    supervisor = Supervisor(dict(os.environ), grace=2)
    code, step = supervisor.run_step("setup", _py("print('hello'); raise SystemExit(3)"))
    assert code == 3
    assert step.said("hello")
    assert supervisor.children == []
    out = capsys.readouterr().out
    assert "setup    | hello" in out

    failing = supervisor.spawn(ProcessSpec("flaky", _py("import sys; sys.exit(2)")))
    failing.proc.wait()
    failing.drain()
    assert "exited with code 2" in devrun.explain_exit(failing, 2)
    supervisor.stop_all()


def test_missing_command_is_explained():
    spec = ProcessSpec("worker", devrun.flask("no-such-command-here"))
    # the app is built (nothing connects) before click looks the command up
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "REDIS_URL": "redis://127.0.0.1:1/0", "PORTAL_ENV": "development"}
    supervisor = Supervisor(env, grace=2)
    child = supervisor.spawn(spec)
    code = child.proc.wait(timeout=60)
    child.drain()
    assert code != 0
    message = devrun.explain_exit(child, code)
    assert "`flask no-such-command-here` does not exist yet" in message
    supervisor.stop_all()


def test_stop_all_kills_what_ignores_sigterm_and_its_children(tmp_path):
    marker = f"devrun-test-{os.getpid()}-{tmp_path.name}"
    stubborn = (  # the marker reaches it by the environment: only the grandchild's argv has it
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sleeper = [sys.executable, '-c', 'import time; time.sleep(120)', os.environ['MARK']]\n"
        "subprocess.Popen(sleeper)\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    polite = "import time; print('ready', flush=True); time.sleep(120)"
    supervisor = Supervisor(dict(os.environ), grace=1)
    children = [
        supervisor.spawn(ProcessSpec("stubborn", _py(stubborn), env={"MARK": marker})),
        supervisor.spawn(ProcessSpec("polite", _py(polite))),
    ]
    deadline = time.monotonic() + 30
    while not (all(c.said("ready") for c in children) and _live_cmdlines(marker)):
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.05)

    started = time.monotonic()
    supervisor.stop_all()
    assert time.monotonic() - started < 10
    assert all(not c.running() for c in children)
    assert children[0].proc.returncode == -signal.SIGKILL
    assert children[1].proc.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while _live_cmdlines(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _live_cmdlines(marker) == [], "the grandchild must die with its process group"


def test_mask_password():
    assert devrun.mask_password("postgresql://crm:s3cret@db:5432/crm") == (
        "postgresql://crm:***@db:5432/crm"
    )
    assert devrun.mask_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_make_run_starts_everything_and_ctrl_c_leaves_nothing_running(tmp_path):
    """The acceptance check of `make run`, on a private data directory and port."""
    instance_dir = tmp_path / "instance"
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "PORTAL_ENV", "PORT", "HOST"}}
    env.update(INSTANCE_DIR=str(instance_dir), PORT=str(port), SEED_DEMO="0",
               DEVRUN_GRACE_SECONDS="5", NO_COLOR="1")
    log_path = tmp_path / "devrun.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.devrun"], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while "is up" not in log_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.2)
        output = log_path.read_text()
        assert f"http://127.0.0.1:{port}/" in output, output
        assert "agent01" in output and str(instance_dir) in output

        try:
            login_page = urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login", timeout=30)
            status = login_page.status
            login_page.close()
        except urllib.error.HTTPError as exc:  # an error page is still an answer of the portal
            status = exc.code
        assert 200 <= status < 600
        assert _live_cmdlines(str(instance_dir)), "the embedded PostgreSQL should be running"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("devrun did not stop within 90 s:\n" + log_path.read_text())

    output = log_path.read_text()
    assert code == 0, output
    assert "all stopped." in output
    # every line of the web server is in its file; the terminal names the files (issue 19)
    assert f"Logs: {instance_dir / 'logs'}/" in output
    assert "Booting worker" in (instance_dir / "logs" / "web.log").read_text()
    assert _live_cmdlines(str(instance_dir)) == []
    assert _live_cmdlines(f"127.0.0.1:{port}") == []
    redis_pid = int((instance_dir / "redis" / "redis.pid").read_text()) if (
        instance_dir / "redis" / "redis.pid").exists() else None
    assert redis_pid is None or not devrun.embedded._pid_alive(redis_pid)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the web port must be closed"
