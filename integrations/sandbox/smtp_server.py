"""Sandbox SMTP server (aiosmtpd) that captures every e-mail instead of delivering it: the
product's e-mail goes through real SMTP in development and tests (docs/integrations.md,
"E-mail").

In a test::

    with CapturingSmtpServer() as smtp:          # 127.0.0.1, a free port
        app.config.update(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port)
        ...  # send
        mail = smtp.messages[0]                  # email.message.EmailMessage
        mail["Subject"], mail.get_content()

``python -m integrations.sandbox.smtp_server --port 8025 [--out DIR]`` (``make run``): each
captured e-mail is logged (from, to, subject) and, with ``--out`` (env ``SMTP_SANDBOX_OUT``),
written to DIR as ``<n>.eml``. Fault knobs: ``SMTP_SANDBOX_REFUSE`` (a comma-separated list of
recipients answered 550), ``SMTP_SANDBOX_TEMPFAIL`` (every message answered 451).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller

SYSTEM = "EMAIL"
DEFAULT_PORT = 8025
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's line per connection


class CapturingHandler:
    """aiosmtpd handler: keeps every message (parsed) and its envelope."""

    def __init__(self, out_dir: str | None = None, refuse: set[str] | None = None,
                 tempfail: bool = False):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[dict] = []
        self.out_dir = Path(out_dir) if out_dir else None
        self.refuse = {r.lower() for r in (refuse or set())}
        self.tempfail = tempfail
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.tempfail:
            return "451 4.3.0 try again later"
        message = BytesParser(policy=policy.default).parsebytes(envelope.original_content
                                                                or envelope.content)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos)})
            number = len(self.messages)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / f"{number:06d}.eml").write_bytes(envelope.original_content
                                                             or envelope.content)
        print(f"captured e-mail #{number}: {envelope.mail_from} -> "
              f"{', '.join(envelope.rcpt_tos)}: {message['Subject']}", flush=True)
        return "250 Message accepted for delivery"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class CapturingSmtpServer:
    """The capturing server on a background thread (tests, demos)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **handler_options):
        self.host = host
        self.port = port or _free_port(host)
        self.handler = CapturingHandler(**handler_options)
        self.controller = Controller(self.handler, hostname=host, port=self.port,
                                     server_hostname="sandbox-smtp.local")

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def __enter__(self) -> CapturingSmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="smtp_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--out", default=os.environ.get("SMTP_SANDBOX_OUT"))
    args, _ = parser.parse_known_args(argv)
    refuse = {r.strip() for r in os.environ.get("SMTP_SANDBOX_REFUSE", "").split(",")
              if r.strip()}
    tempfail = os.environ.get("SMTP_SANDBOX_TEMPFAIL", "").lower() in ("1", "true", "yes")
    server = CapturingSmtpServer(args.host, args.port, out_dir=args.out, refuse=refuse,
                                 tempfail=tempfail)
    with server:
        print(f"SMTP sandbox listening on smtp://{args.host}:{server.port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
