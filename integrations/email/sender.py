"""Send one e-mail over SMTP with the standard library (``smtplib``, ``email.message``):
UTF-8 subject and body (Vietnamese as written), STARTTLS and login when configured.

Settings: ``SMTP_HOST``, ``SMTP_PORT`` (25), ``SMTP_USERNAME`` / ``SMTP_PASSWORD`` (login only
when set), ``SMTP_STARTTLS`` (false), ``SMTP_TIMEOUT`` (10 s), ``MAIL_FROM``.

``send_email`` raises ``EmailUnavailable`` when the server could not be reached or answered
with a temporary (4xx) error — try later — and ``EmailRefused`` when it refused the message
for good (5xx: an unknown mailbox, a refused sender).
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from integrations.control import breaker

SYSTEM = "EMAIL"


class EmailError(Exception):
    pass


class EmailUnavailable(EmailError):
    """Not delivered to the server this time (outage, timeout, 4xx): try again later."""


class EmailRefused(EmailError):
    """The server refused the message for good (5xx)."""


def build_message(*, sender: str, sender_name: str | None, to: str, subject: str, body: str,
                  reference: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender)) if sender_name else sender
    message["To"] = to
    message["Subject"] = subject
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=reference, domain=domain)
    if reference:
        message["X-CRM-Reference"] = reference
    message.set_content(body, charset="utf-8")
    return message


def send_email(config, *, to: str, subject: str, body: str,
               reference: str | None = None) -> str:
    """Send one e-mail through the configured SMTP server; returns its Message-ID."""
    host = config.get("SMTP_HOST")
    if not host:
        raise EmailUnavailable("no SMTP server configured (SMTP_HOST)")
    message = build_message(sender=config.get("MAIL_FROM") or "no-reply@localhost",
                            sender_name=config.get("MAIL_FROM_NAME"), to=to, subject=subject,
                            body=body, reference=reference)
    gate = breaker(SYSTEM)
    if not gate.allow():
        raise EmailUnavailable("SMTP unavailable: circuit breaker open (not called)")
    try:
        with smtplib.SMTP(host, int(config.get("SMTP_PORT") or 25),
                          timeout=float(config.get("SMTP_TIMEOUT") or 10)) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        gate.record_success()
        codes = [code for code, _ in exc.recipients.values()]
        if all(400 <= code < 500 for code in codes):
            raise EmailUnavailable(f"recipient deferred: {exc.recipients}") from exc
        raise EmailRefused(f"recipient refused: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        gate.record_success()
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            raise EmailUnavailable(f"SMTP {exc.smtp_code}: {text}") from exc
        raise EmailRefused(f"SMTP {exc.smtp_code}: {text}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        gate.record_failure(exc)
        raise EmailUnavailable(f"SMTP server {host} unreachable: {exc}") from exc
    gate.record_success()
    return message["Message-ID"]
