"""Simulators of the external systems, for development, demos and tests (never production).

``SIMULATORS`` is the registry the process runner reads: each HTTP simulator is started as
``python -m <module> --port <port>`` (add ``--host``; fault knobs from the environment, see
docs/integrations.md). The T24 twin is a file generator, not a server: ``python -m
integrations.sandbox.t24_files --out <inbox>/inbox ...`` writes a business date's files; its
per-customer enquiry service (the customer refresh) is an HTTP twin, ``t24-enquiry``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Simulator:
    name: str
    system: str  # integration name, as in portal.models.enums.INTEGRATIONS
    module: str  # runnable with ``python -m``
    kind: str  # "http" (a server on a port), "smtp" (an SMTP server on a port) or "files"
    default_port: int | None
    env_prefix: str  # fault knobs and credentials: <PREFIX>_LATENCY_MS, <PREFIX>_API_KEY, ...
    description: str

    def command(self, python: str = "python", port: int | None = None,
                host: str = "127.0.0.1") -> list[str]:
        """The command that starts an HTTP simulator."""
        if self.kind not in ("http", "smtp"):
            raise ValueError(f"{self.name} is not a server")
        return [python, "-m", self.module, "--host", host,
                "--port", str(port or self.default_port)]


SIMULATORS: tuple[Simulator, ...] = (
    Simulator("t24", "T24", "integrations.sandbox.t24_files", "files", None, "T24_SANDBOX",
              "T24 core banking: business-date file sets (JSON Lines, JSON, XML) + manifest"),
    Simulator("t24-enquiry", "T24", "integrations.sandbox.t24_enquiry", "http", 8708,
              "T24_ENQUIRY_SANDBOX",
              "T24 enquiry service: GET /api/v1/enquiries/CRM.CUSTOMER.POSITION?customerId=, "
              "X-API-Key; one customer's records in T24 field names (customer refresh)"),
    Simulator("w4", "W4", "integrations.sandbox.w4_server", "http", 8701, "W4_SANDBOX",
              "W4 card system: GET /api/v1/cards, GET /api/v1/clients/<cif>/cards, X-API-Key, "
              "keyset pages"),
    Simulator("los", "LOS", "integrations.sandbox.los_server", "http", 8702, "LOS_SANDBOX",
              "LOS: GET /api/v1/applications, GET /api/v1/customers/<cif>/applications, "
              "Bearer token, keyset pages"),
    Simulator("payments", "PAYMENTS", "integrations.sandbox.payments_server", "http", 8703,
              "PAYMENTS_SANDBOX", "Payment system: signed webhooks to PORTAL_URL (fault knobs), "
              "GET /api/v1/reports/<date>/transactions, X-API-Key"),
    Simulator("callcentre", "CTI", "integrations.sandbox.callcentre_server", "http", 8704,
              "CALLCENTRE_SANDBOX",
              "Call centre: agents, dial, status and call-list API (X-API-Key); signed CTI "
              "events and a working day's traffic posted to PORTAL_URL"),
    Simulator("gps", "GPS", "integrations.sandbox.gps_server", "http", 8705, "GPS_SANDBOX",
              "GPS tracking: POST positions, POST verify, GET agent route, X-API-Key"),
    Simulator("phones", "GPS", "integrations.sandbox.phone_sim", "http", 8706, "PHONE_SIM",
              "Field agents' phones posting positions to PORTAL_URL (JSON batch and OsmAnd)"),
    Simulator("sms", "SMS", "integrations.sandbox.sms_server", "http", 8707, "SMS_SANDBOX",
              "SMS gateway: POST /api/v1/messages (X-API-Key); signed delivery reports "
              "posted to PORTAL_URL"),
    Simulator("smtp", "EMAIL", "integrations.sandbox.smtp_server", "smtp", 8025, "SMTP_SANDBOX",
              "SMTP server that captures every e-mail (aiosmtpd); logged, --out writes .eml"),
)


def get(name: str) -> Simulator:
    for simulator in SIMULATORS:
        if simulator.name == name:
            return simulator
    raise KeyError(f"no sandbox simulator named {name!r}")
