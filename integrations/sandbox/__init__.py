"""Simulators of the external systems, for development, demos and tests (never production).

``SIMULATORS`` is the registry the process runner reads: each HTTP simulator is started as
``python -m <module> --port <port>`` (add ``--host``; fault knobs from the environment, see
docs/integrations.md). The T24 twin is a file generator, not a server: ``python -m
integrations.sandbox.t24_files --out <inbox>/inbox ...`` writes a business date's files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Simulator:
    name: str
    system: str  # integration name, as in portal.models.enums.INTEGRATIONS
    module: str  # runnable with ``python -m``
    kind: str  # "http" (a server on a port) or "files" (a generator run on demand)
    default_port: int | None
    env_prefix: str  # fault knobs and credentials: <PREFIX>_LATENCY_MS, <PREFIX>_API_KEY, ...
    description: str

    def command(self, python: str = "python", port: int | None = None,
                host: str = "127.0.0.1") -> list[str]:
        """The command that starts an HTTP simulator."""
        if self.kind != "http":
            raise ValueError(f"{self.name} is not a server")
        return [python, "-m", self.module, "--host", host,
                "--port", str(port or self.default_port)]


SIMULATORS: tuple[Simulator, ...] = (
    Simulator("t24", "T24", "integrations.sandbox.t24_files", "files", None, "T24_SANDBOX",
              "T24 core banking: business-date file sets (JSON Lines, JSON, XML) + manifest"),
    Simulator("w4", "W4", "integrations.sandbox.w4_server", "http", 8701, "W4_SANDBOX",
              "W4 card system: GET /api/v1/cards, X-API-Key, keyset pages"),
    Simulator("los", "LOS", "integrations.sandbox.los_server", "http", 8702, "LOS_SANDBOX",
              "LOS: GET /api/v1/applications, Bearer token, keyset pages"),
)


def get(name: str) -> Simulator:
    for simulator in SIMULATORS:
        if simulator.name == name:
            return simulator
    raise KeyError(f"no sandbox simulator named {name!r}")
