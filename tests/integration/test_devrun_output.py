"""Issue 19, finding 22: `make run` no longer floods its terminal.

Every line of every process goes to its file under <instance>/logs/; the terminal shows
warnings, errors (a traceback whole) and a status line (jobs done, failed, queued; webhooks and
phone positions accepted and refused). Tested without the whole stack: the router with the
lines the processes really print, a real child process, a real simulator, RQ's counters in the
test Redis."""

from __future__ import annotations

import io
import os
import socket
import sys
import time
import urllib.request

import pytest
from redis import Redis
from rq import Worker

from integrations.sandbox import get as get_simulator
from portal import devlog, devrun
from portal.devrun import ProcessSpec, Supervisor
from portal.queues import get_queue

# What `make run` printed in a minute (issue 19): per-job lines, access lines, start-up lines.
INFO_LINES = [
    ("worker", "2026-12-06 19:39:37,568 INFO rq.worker [None] Worker 89ea: integrations: "
               "workers.jobs.calls.sync_agent_statuses() (aede5a04)"),
    ("worker", "2026-12-06 19:39:37,613 INFO rq.worker [aede5a04] Successfully completed "
               "workers.jobs.calls.sync_agent_statuses() job in 0:00:00.021210s on worker 89ea"),
    ("worker", "2026-12-06 19:39:37,615 INFO rq.worker [aede5a04] Worker 89ea: integrations: "
               "Job OK (aede5a04)"),
    ("worker", "2026-12-06 19:39:37,615 INFO rq.worker [aede5a04] Worker 89ea: job aede5a04 "
               "result is kept for 86400 seconds"),
    ("web", '127.0.0.1 - - [06/Dec/2026:19:39:39 +0000] "POST /api/v1/cti/events HTTP/1.1" '
            '200 113 "-" "python-requests/2.34.2"'),
    ("web", '127.0.0.1 - - [06/Dec/2026:19:39:39 +0000] "POST /api/v1/field/osmand?id=x&lat=1 '
            'HTTP/1.1" 200 2 "-" "okhttp/4.12"'),
    ("web", "[2026-12-06 19:39:32 +0000] [27392] [INFO] Booting worker with pid: 27392"),
    ("sim-gps", '2026-12-06 19:39:47,101 INFO werkzeug [None] 127.0.0.1 - - [06/Dec/2026 '
                '19:39:47] "POST /api/v1/positions HTTP/1.1" 200 -'),
    ("sim-phones", "phone-sim: 7 field agents on the road, a point every 5 s"),
    ("seed", "seeded 33989 rows in 2.2s (15,411 rows/s)"),
]
SHOWN_LINES = [
    ("worker", "2026-12-06 19:40:01,002 WARNING portal.events.relay [None] 3 events waited "
               "more than 60 s"),
    ("web", '{"ts": "2026-12-06T19:40:02.000+00:00", "level": "ERROR", "logger": '
            '"portal.web", "message": "unhandled error on GET /cases/1"}'),
    ("web", "[2026-12-06 19:40:03 +0000] [27376] [CRITICAL] WORKER TIMEOUT (pid:27392)"),
    ("worker", "2026-12-06 19:40:04,120 ERROR rq.worker [f00] Traceback below"),
    ("worker", "Traceback (most recent call last):"),
    ("worker", '  File "/work/main/workers/jobs/sync.py", line 12, in run_w4_sync'),
    ("worker", "    raise Unavailable('W4 is down')"),
    ("worker", "integrations.http.Unavailable: W4 is down"),
    ("sim-w4", "/work/main/integrations/x.py:3: DeprecationWarning: datetime.utcnow() is "
               "deprecated"),
    ("migrate", "Error: No such command 'db'."),
]


@pytest.fixture
def router_with(tmp_path):
    """``router_with(**options)``: a router writing to tmp_path/logs and to a string (not a
    terminal), and that string; closed after the test."""
    routers = []

    def make(**kwargs):
        out = io.StringIO()
        terminal = devlog.Terminal(out, colour=False, live=False)
        routers.append(devlog.OutputRouter(terminal, tmp_path / "logs", **kwargs))
        return routers[-1], out

    yield make
    for router in routers:
        router.close()


def test_terminal_shows_warnings_errors_and_tracebacks_and_the_files_keep_every_line(
        tmp_path, router_with):
    router, out = router_with()
    lines = INFO_LINES[:5] + SHOWN_LINES[:4] + INFO_LINES[5:] + SHOWN_LINES[4:]
    for name, line in lines:
        router.line(name, "36", line)
    router.close()  # the files flushed and closed

    shown = out.getvalue().splitlines()
    assert shown == [f"{name:<8} | {line}" for name, line in SHOWN_LINES]
    for name in {name for name, _ in lines}:
        kept = (tmp_path / "logs" / f"{name}.log").read_text().splitlines()
        assert kept == [line for n, line in lines if n == name], name


def test_a_flood_of_warnings_is_capped_and_counted_on_the_status_line(tmp_path, router_with):
    router, out = router_with(burst=5)
    for n in range(12):
        router.line("worker", "36", f"2026-12-06 19:40:{n:02d},000 WARNING x [None] slow {n}")
    assert len(out.getvalue().splitlines()) == 5
    status = router.status(devlog.Jobs(done=10, failed=0, queued=0))
    assert status.endswith(f"7 more warning lines in {tmp_path / 'logs'}")
    router.line("worker", "36", "2026-12-06 19:41:00,000 WARNING x [None] a new period")
    assert out.getvalue().splitlines()[-1].endswith("a new period")
    assert "more warning lines" not in router.status(None)
    assert (tmp_path / "logs" / "worker.log").read_text().count("WARNING") == 13


def test_a_long_traceback_is_cut_and_points_to_the_file(tmp_path, router_with):
    router, out = router_with()
    router.line("worker", "36", "Traceback (most recent call last):")
    for n in range(100):
        router.line("worker", "36", f'  File "x.py", line {n}, in f')
    router.line("worker", "36", "RecursionError: maximum recursion depth exceeded")
    shown = out.getvalue().splitlines()
    assert len(shown) == devlog.TRACEBACK_LINES + 2
    assert f"the rest of this traceback is in {tmp_path / 'logs' / 'worker.log'}" in shown[-2]
    assert shown[-1].endswith("RecursionError: maximum recursion depth exceeded")


def test_the_status_line_counts_jobs_webhooks_and_positions(redis_client, router_with):
    worker = Worker([get_queue("events", redis_client)], connection=redis_client, name="w-one")
    worker.register_birth()
    for _ in range(3):
        worker.increment_successful_job_count()
    worker.increment_failed_job_count()
    for _ in range(2):
        get_queue("integrations", redis_client).enqueue("os.getcwd")
    jobs = devlog.job_counts(redis_client)
    assert jobs == devlog.Jobs(done=3, failed=1, queued=2)
    assert devlog.job_counts(Redis(port=1, socket_connect_timeout=0.2)) is None

    router, out = router_with()
    access = '127.0.0.1 - - [06/Dec/2026:19:39:39 +0000] "{} {} HTTP/1.1" {} 2 "-" "x"'
    for method, path, status in [
        ("POST", "/api/v1/payments/notifications", 200), ("POST", "/api/v1/cti/events", 200),
        ("POST", "/api/v1/cti/events", 202), ("POST", "/api/v1/payments/notifications", 401),
        ("POST", "/api/v1/field/locations", 200), ("GET", "/api/v1/field/osmand?lat=10", 200),
        ("POST", "/api/v1/field/osmand", 200), ("POST", "/api/v1/field/locations", 422),
        ("GET", "/health", 200), ("GET", "/api/v1/cti/events", 405),
    ]:
        router.line("web", "36", access.format(method, path, status))
    assert out.getvalue() == ""  # access lines are for the file
    status = router.status(jobs)
    assert status.startswith("status ")
    assert status.split(" · ", 1)[1] == ("jobs 3 done, 1 failed, 2 queued · webhooks 3 accepted, "
                                         "1 refused · positions 3 accepted, 1 refused")
    assert out.getvalue() == status + "\n"  # not a terminal: one line each time
    assert "jobs: Redis does not answer" in devlog.status_line(None, devlog.Traffic())


def test_on_a_terminal_the_status_line_is_redrawn_below_what_is_shown(tmp_path):
    out = io.StringIO()
    terminal = devlog.Terminal(out, colour=False, live=True)
    terminal.status("status 1")
    terminal.line("worker", "36", "a warning")
    terminal.status("status 2")
    assert out.getvalue() == ("\r\x1b[Kstatus 1" "\r\x1b[Kworker   | a warning\nstatus 1"
                              "\r\x1b[Kstatus 2")


def test_the_push_paths_counted_are_routes_of_the_portal(app):
    urls = app.url_map.bind("localhost")
    for path in (*devlog.WEBHOOK_PATHS, *devlog.POSITION_PATHS):
        endpoint, _ = urls.match(path, method="POST")
        assert endpoint.startswith(("webhooks.", "api.")), (path, endpoint)


def test_a_childs_lines_go_to_its_file_and_only_its_warning_to_the_terminal(tmp_path, capsys):
    router = devlog.OutputRouter(devlog.Terminal(live=False, colour=False), tmp_path / "logs")
    supervisor = Supervisor(dict(os.environ), grace=2, output=router.line)
    code = ("print('2026-12-06 19:40:00,000 INFO rq.worker [None] Job OK (1)'); "
            "print('2026-12-06 19:40:00,001 WARNING portal.x [None] disk almost full'); "
            "print('just a print')")
    step_code, step = supervisor.run_step("worker", (sys.executable, "-c", code))
    assert step_code == 0
    router.close()
    assert capsys.readouterr().out == (
        "worker   | 2026-12-06 19:40:00,001 WARNING portal.x [None] disk almost full\n")
    assert (tmp_path / "logs" / "worker.log").read_text().splitlines() == [
        "2026-12-06 19:40:00,000 INFO rq.worker [None] Job OK (1)",
        "2026-12-06 19:40:00,001 WARNING portal.x [None] disk almost full", "just a print"]
    devrun.show_tail(step, router)  # what a failed step shows: its last lines, and where
    shown = capsys.readouterr().out
    assert f"all of them in {tmp_path / 'logs' / 'worker.log'}" in shown
    assert "worker   | just a print" in shown


def test_a_simulators_access_lines_carry_their_level_and_stay_in_its_file(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    router = devlog.OutputRouter(devlog.Terminal(live=False, colour=False), tmp_path / "logs")
    supervisor = Supervisor(dict(os.environ), grace=5, output=router.line)
    argv = (*get_simulator("w4").command(sys.executable, port=port), "--customers", "20",
            "--products", "30")
    child = supervisor.spawn(ProcessSpec("sim-w4", argv))
    try:
        deadline = time.monotonic() + 60
        while not child.said("listening"):
            assert child.running() and time.monotonic() < deadline, list(child.tail)
            time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            assert answer.status == 200
        deadline = time.monotonic() + 10
        while not child.said("GET /health"):
            assert time.monotonic() < deadline, list(child.tail)
            time.sleep(0.1)
    finally:
        supervisor.stop_all()
        router.close()
    assert "sim-w4   |" not in capsys.readouterr().out  # devrun's own "stopping" only
    kept = (tmp_path / "logs" / "sim-w4.log").read_text()
    assert " INFO werkzeug " in kept and '"GET /health HTTP/1.1" 200' in kept


def test_the_banner_names_the_log_files_and_what_the_terminal_shows(tmp_path):
    text = devrun.banner("http://127.0.0.1:5000/", "instance", tmp_path / "logs")
    assert f"Logs: {tmp_path / 'logs'}/ (one file per process" in text
    assert "warnings, errors and a status line every" in text
    assert "DEVRUN_VERBOSE=1" in text


def test_verbose_shows_every_line_as_before(router_with):
    router, out = router_with(verbose=True)
    for name, line in INFO_LINES:
        router.line(name, "36", line)
    assert len(out.getvalue().splitlines()) == len(INFO_LINES)
