"""Gunicorn settings shared by production and ``make run``:
``gunicorn -c python:portal.gunicorn_conf wsgi:app`` (command-line flags override these).

Every value comes from the environment; see the configuration table in README.md.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200
# Logs go to stdout/stderr: the process manager (systemd, a container runtime) collects them.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# The TLS proxy in front sets X-Forwarded-Proto; trust it only from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Heartbeat files on a memory filesystem (a slow disk can make workers look dead).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
# No control socket (gunicorn >= 25): it lives at one path per user, so two gunicorns on one
# machine (make run beside the tests, or two checkouts) would fight over it.
control_socket_disable = True
