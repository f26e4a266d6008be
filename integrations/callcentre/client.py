"""The call centre's REST API (``X-API-Key``; docs/integrations.md, "Call centre"):

- ``PUT  /api/v1/agents/<agent_id>/status`` ``{"status", "reason"}`` — set an agent's status
- ``GET  /api/v1/agents`` — agents and their current status
- ``POST /api/v1/calls`` ``{"agent_id", "phone", "reference", "request_id"}`` — dial (202)
- ``POST /api/v1/calls/<call_id>/hangup`` — end a call
- ``GET  /api/v1/calls?date=YYYY-MM-DD`` — the day's calls, keyset pages (the shared contract)

Requests go through the shared client (integrations/http.py): retries with backoff on 5xx/429/
timeouts, behind the call centre's circuit breaker (``CTI``, integrations/control.py).
Interactive calls (a click in the portal) fail fast: one retry, short timeout; the portal then
degrades (status kept and marked unsynced, manual call logging offered).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from integrations.control import breaker
from integrations.http import ApiError, JsonApiClient

AGENTS_PATH = "/api/v1/agents"
CALLS_PATH = "/api/v1/calls"


class CallCentreClient(JsonApiClient):
    name = "Call centre"

    def __init__(self, base_url: str, api_key: str, **kwargs):
        kwargs.setdefault("timeout", 3.0)
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("backoff", 0.2)
        super().__init__(base_url, **kwargs)
        self.api_key = api_key

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    # -- the API -------------------------------------------------------------------------------
    def set_agent_status(self, agent_id: str, status: str, reason: str | None = None) -> dict:
        return self.send_json("PUT", f"{AGENTS_PATH}/{agent_id}/status",
                              {"status": status, "reason": reason})

    def agents(self) -> list[dict]:
        return list(self.get_json(AGENTS_PATH).get("data") or [])

    def dial(self, agent_id: str, phone: str, *, reference: str | None = None,
             request_id: str | None = None) -> dict:
        """Ask the call centre to ring ``agent_id``'s phone and then ``phone``; returns
        ``{"call_id", "status"}``."""
        return self.send_json("POST", CALLS_PATH, {"agent_id": agent_id, "phone": phone,
                                                   "reference": reference,
                                                   "request_id": request_id})

    def hangup(self, call_id: str) -> dict:
        return self.send_json("POST", f"{CALLS_PATH}/{call_id}/hangup")

    def calls_of_day(self, day: date, *, limit: int | None = None) -> Iterator[dict]:
        """Every call the call centre handled on ``day`` (its business date)."""
        params = {"limit": limit or self.page_size, "date": day.isoformat()}
        while True:
            body = self.get_json(CALLS_PATH, params)
            data = body.get("data")
            if not isinstance(data, list):
                raise ApiError(f"{self.name}: page has no 'data' list", url=CALLS_PATH)
            yield from data
            cursor = body.get("next_cursor")
            if not cursor:
                return
            if cursor == params.get("cursor"):
                raise ApiError(f"{self.name}: pagination does not advance", url=CALLS_PATH)
            params = {**params, "cursor": cursor}


def from_config(config) -> CallCentreClient | None:
    """The client the app's configuration points at (None when no call centre is set up)."""
    url = config.get("CALLCENTRE_URL")
    if not url:
        return None
    return CallCentreClient(url, config.get("CALLCENTRE_API_KEY") or "",
                            timeout=float(config.get("CALLCENTRE_TIMEOUT") or 3),
                            breaker=breaker("CTI"))


@contextmanager
def call_centre(config) -> Iterator[CallCentreClient | None]:
    """``from_config``'s client for one piece of work, closed after it."""
    client = from_config(config)
    try:
        yield client
    finally:
        if client is not None:
            client.close()
