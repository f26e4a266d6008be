"""What ``make run`` shows in its terminal, and the full logs it keeps (used by portal/devrun.py).

Every line every process prints goes to that process's file under ``<instance>/logs/``
(``web.log``, ``worker.log``, ``sim-<name>.log``, ``migrate.log``, ``seed.log``). The previous
run's file is kept as ``<name>.log.1``, and so is a file that grows past ``MAX_LOG_BYTES``.

The terminal shows only what a person needs to see:

- devrun's own messages (the banner names the URL, the logins and these files);
- warnings and errors, read from the level each line carries (the portal's text and JSON log
  formats, gunicorn's ``[LEVEL]``, Python's warnings, a command's ``Error:``), and a traceback
  as a whole (at most ``TRACEBACK_LINES`` of it); at most ``BURST_LINES`` such lines per status
  period, the others are counted on the status line;
- a status line every ``DEVRUN_STATUS_SECONDS``: jobs done, failed and queued (RQ's own
  counters in Redis), webhooks and phone positions accepted and refused (the web server's
  access lines). On a terminal it is redrawn in place; piped to a file, it is one line each time.

``DEVRUN_VERBOSE=1`` prints every line as well (the files are written either way).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from redis import Redis
from rq import Worker

from portal import clock
from portal.logging import line_level
from portal.queues import all_queues

MAX_LOG_BYTES = 20 * 1024 * 1024
TRACEBACK_LINES = 40
BURST_LINES = 40
NAME_WIDTH = 8

# The portal's push endpoints, as the web server's access lines show them (tests/unit/
# test_devlog.py checks that they are routes of the app).
WEBHOOK_PATHS = ("/api/v1/payments/notifications", "/api/v1/cti/events")
POSITION_PATHS = ("/api/v1/field/locations", "/api/v1/field/osmand")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GUNICORN = re.compile(r"^\[[^\]]+\] \[\d+\] \[([A-Z]+)\] ")
_PY_WARNING = re.compile(r"^\S+:\d+: \w*Warning: ")
_COMMAND_ERROR = re.compile(r"^(Error|ERROR|FATAL)\b:? ")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>[^ "?]+)\S* HTTP/[\d.]+" (?P<status>\d{3}) ')
TRACEBACK = "Traceback (most recent call last):"


def plain(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def classify(line: str) -> int | None:
    """The level one output line carries, or None (an access line, a print, a frame)."""
    level = line_level(line)
    if level is not None:
        return level
    match = _GUNICORN.match(line)
    if match:
        level = logging.getLevelName(match.group(1))
        return level if isinstance(level, int) else None
    if _PY_WARNING.match(line):
        return logging.WARNING
    if _COMMAND_ERROR.match(line) or line.startswith((TRACEBACK, *_CHAINED)):
        return logging.ERROR
    return None


# ------------------------------------------------------------------------------ the terminal


class Terminal:
    """devrun's only writer to stdout: lines prefixed with the process name, and the status line
    (on a terminal, redrawn in place below them)."""

    def __init__(self, stream: TextIO | None = None, *, colour: bool | None = None,
                 live: bool | None = None):
        self._stream = stream
        tty = (stream or sys.stdout).isatty()
        self.colour = colour if colour is not None else bool(os.environ.get("FORCE_COLOR")) or (
            tty and not os.environ.get("NO_COLOR"))
        self.live = tty if live is None else live
        self._status = ""
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout  # test runners swap sys.stdout

    def line(self, name: str, colour: str, text: str) -> None:
        prefix = f"{name:<{NAME_WIDTH}} |"
        if self.colour:
            prefix = f"\033[{colour}m{prefix}\033[0m"
        with self._lock:
            if self._status:
                self.stream.write("\r\033[K")
            self.stream.write(f"{prefix} {text}\n")
            if self._status:
                self.stream.write(self._status)
            self.stream.flush()

    def status(self, text: str) -> None:
        with self._lock:
            if self.live:
                width = shutil.get_terminal_size((120, 24)).columns - 1
                self._status = text[:width]
                self.stream.write("\r\033[K" + self._status)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def end_status(self) -> None:
        """Leave the status line where it is (devrun is stopping: what follows goes below)."""
        with self._lock:
            if self._status:
                self.stream.write("\n")
                self._status = ""
                self.stream.flush()


# ------------------------------------------------------------------------------ the files


class LogFiles:
    """One file per process under ``directory``; the previous run's is kept as ``.log.1``."""

    def __init__(self, directory: Path, max_bytes: int = MAX_LOG_BYTES):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def _open(self, name: str) -> TextIO:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(name)
        if path.exists() and path.stat().st_size:
            path.replace(path.with_name(path.name + ".1"))
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        self._files[name] = handle
        return handle

    def write(self, name: str, line: str) -> None:
        with self._lock:
            handle = self._files.get(name) or self._open(name)
            handle.write(line + "\n")
            handle.flush()
            if handle.tell() > self.max_bytes:
                handle.close()
                self._open(name)

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()


# ------------------------------------------------------------------------------ the status


@dataclass(frozen=True)
class Jobs:
    done: int
    failed: int
    queued: int


def job_counts(connection: Redis) -> Jobs | None:
    """RQ's own counters: jobs done and failed by the live workers, jobs waiting in the queues
    (None when Redis does not answer)."""
    try:
        workers = Worker.all(connection=connection)
        queued = sum(queue.count for queue in all_queues(connection))
    except Exception:  # noqa: BLE001 - a status line, never a crash
        return None
    return Jobs(done=sum(w.successful_job_count for w in workers),
                failed=sum(w.failed_job_count for w in workers), queued=queued)


@dataclass
class Traffic:
    """Pushes the portal received, counted from the web server's access lines."""

    webhooks_accepted: int = 0
    webhooks_refused: int = 0
    positions_accepted: int = 0
    positions_refused: int = 0

    def count(self, access_line: str) -> None:
        match = _ACCESS.search(access_line)
        if not match:
            return
        path, refused = match["path"], int(match["status"]) >= 400
        if path in WEBHOOK_PATHS and match["method"] == "POST":
            kind = "webhooks"
        elif path in POSITION_PATHS:
            kind = "positions"
        else:
            return
        name = f"{kind}_{'refused' if refused else 'accepted'}"
        setattr(self, name, getattr(self, name) + 1)


def status_line(jobs: Jobs | None, traffic: Traffic, hidden: int = 0,
                log_dir: Path | None = None) -> str:
    """``status 19:40 · jobs 1,204 done, 0 failed, 3 queued · webhooks 96 accepted, 2 refused ·
    positions 40 accepted, 0 refused`` (the time is the bank's)."""
    at = clock.now().astimezone(clock.bank_zone()).strftime("%H:%M:%S")
    parts = [f"status {at}"]
    if jobs is None:
        parts.append("jobs: Redis does not answer")
    else:
        parts.append(f"jobs {jobs.done:,} done, {jobs.failed:,} failed, {jobs.queued:,} queued")
    parts.append(f"webhooks {traffic.webhooks_accepted:,} accepted, "
                 f"{traffic.webhooks_refused:,} refused")
    parts.append(f"positions {traffic.positions_accepted:,} accepted, "
                 f"{traffic.positions_refused:,} refused")
    if hidden:
        where = f" in {log_dir}" if log_dir else ""
        parts.append(f"{hidden:,} more warning lines{where}")
    return " · ".join(parts)


# ------------------------------------------------------------------------------ the router


class OutputRouter:
    """Where each line a child prints goes: its file, the traffic counts, and the terminal when
    it is a warning, an error or part of a traceback (or always, ``verbose``)."""

    def __init__(self, terminal: Terminal, log_dir: Path | None, *, verbose: bool = False,
                 burst: int = BURST_LINES, access_from: str = "web"):
        self.terminal = terminal
        self.files = LogFiles(log_dir) if log_dir is not None else None
        self.log_dir = log_dir
        self.verbose = verbose
        self.burst = burst
        self.access_from = access_from
        self.traffic = Traffic()
        self._tracebacks: dict[str, int] = {}  # process name → lines shown of its open traceback
        self._shown = 0  # warning and error lines shown in this status period
        self._hidden = 0
        self._lock = threading.Lock()

    def line(self, name: str, colour: str, text: str) -> None:
        """One line process ``name`` printed."""
        bare = plain(text)
        if self.files is not None:
            self.files.write(name, bare)
        if name == self.access_from:
            with self._lock:
                self.traffic.count(bare)
        if self.verbose:
            self.terminal.line(name, colour, text)
            return
        shown = self._decide(name, bare)
        if shown is not None:
            self.terminal.line(name, colour, shown)

    def _decide(self, name: str, line: str) -> str | None:
        """The text to show for ``line``, or None (the file has it)."""
        with self._lock:
            open_block = self._tracebacks.get(name)  # lines shown of it; -1: a hidden one
            if open_block is not None:
                last = not line[:1].isspace()  # the exception itself ends the traceback
                if last:
                    del self._tracebacks[name]
                else:
                    self._tracebacks[name] = open_block + 1 if open_block >= 0 else -1
                if open_block < 0:
                    self._hidden += 1
                    return None
                if last or open_block < TRACEBACK_LINES:
                    return line
                if open_block == TRACEBACK_LINES:
                    return f"  … the rest of this traceback is in {self.where(name)}"
                return None
            if line.startswith(TRACEBACK):
                shown = self._budget(line)
                self._tracebacks[name] = 1 if shown is not None else -1
                return shown
            level = classify(line)
            if level is None or level < logging.WARNING:
                return None
            return self._budget(line)

    def _budget(self, line: str) -> str | None:
        if self._shown < self.burst:
            self._shown += 1
            return line
        self._hidden += 1
        return None

    def where(self, name: str) -> str:
        return str(self.files.path(name)) if self.files is not None else "the process's output"

    def status(self, jobs: Jobs | None) -> str:
        """Draw the status line; a new status period starts."""
        with self._lock:
            hidden, self._hidden, self._shown = self._hidden, 0, 0
            text = status_line(jobs, self.traffic, hidden, self.log_dir)
        self.terminal.status(text)
        return text

    def close(self) -> None:
        self.terminal.end_status()
        if self.files is not None:
            self.files.close()
