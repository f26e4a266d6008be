"""The portal served as in production for load tests: gunicorn (``portal/gunicorn_conf.py``) with
2 workers on a free loopback port, against the test database and Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """``gunicorn -c python:portal.gunicorn_conf -w <workers> wsgi:app`` on 127.0.0.1; stderr
    (warnings and tracebacks) goes to ``log``."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int = 2, threads: int = 8,
                 app_path: str = "wsgi:app", chdir: Path = ROOT):
        """``chdir``: where ``app_path``'s module lives (another app, e.g. a bare baseline)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf",
             "--chdir", str(chdir), "-w", str(workers), "--threads", str(threads),
             "--max-requests", "0", "--access-logfile", "/dev/null", "--log-level", "warning",
             "-b", f"127.0.0.1:{self.port}", app_path],
            env={**os.environ, **env, "PYTHONPATH": f"{ROOT}{os.pathsep}{chdir}"},
            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=self._log_file)

    def wait(self, path: str = "/health", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.tail()}")
            try:
                requests.get(self.url + path, timeout=5)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer in {timeout:.0f} s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log_file.close()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
