"""The call centre's REST API (``X-API-Key``; docs/integrations.md, "Call centre"):

- ``PUT  /api/v1/agents/<agent_id>/status`` ``{"status", "reason"}`` — set an agent's status
- ``GET  /api/v1/agents`` — agents and their current status
- ``POST /api/v1/calls`` ``{"agent_id", "phone", "reference", "request_id"}`` — dial (202)
- ``POST /api/v1/calls/<call_id>/hangup`` — end a call
- ``GET  /api/v1/calls?date=YYYY-MM-DD`` — the day's calls, keyset pages (the shared contract)

Interactive calls (a click in the portal) fail fast: one retry, short timeout; the portal then
degrades (status kept and marked unsynced, manual call logging offered).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import requests

from integrations.http import RETRY_STATUSES, ApiError, AuthError, JsonApiClient, Unavailable

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

    # -- writes (the shared client only reads) -------------------------------------------------
    def send_json(self, method: str, path: str, body: dict | None = None) -> dict:
        """``method`` ``path`` with a JSON body; retried like reads on 5xx/429/timeouts."""
        url = f"{self.base_url}{path}"
        headers = {"Accept": "application/json", **self.auth_headers()}
        attempts = self.retries + 1
        last_error, last_status = "no attempt made", None
        for attempt in range(1, attempts + 1):
            self.stats.requests += 1
            retry_after = None
            try:
                response = self.session.request(method, url, json=body or {}, headers=headers,
                                                timeout=self.timeout)
            except requests.Timeout:
                last_error, last_status = f"timed out after {self.timeout}s", None
            except requests.ConnectionError as exc:
                last_error, last_status = f"connection failed: {type(exc).__name__}", None
            else:
                status = response.status_code
                payload = _json(response)
                message = str((payload.get("error") or {}).get("message") or response.reason)
                if status in (401, 403):
                    self.stats.failures += 1
                    raise AuthError(f"{self.name} refused the credentials ({status}): {message}",
                                    status=status, url=url, attempts=attempt)
                if status not in RETRY_STATUSES:
                    if status >= 400:
                        self.stats.failures += 1
                        raise ApiError(f"{self.name} answered {status}: {message}",
                                       status=status, url=url, attempts=attempt,
                                       code=(payload.get("error") or {}).get("code"))
                    return payload
                last_error, last_status = f"HTTP {status}: {message}", status
                retry_after = response.headers.get("Retry-After")
            if attempt < attempts:
                self.stats.retries += 1
                self.sleep(self._delay(attempt, retry_after))
        self.stats.failures += 1
        self.stats.errors.append(last_error)
        raise Unavailable(f"{self.name} unavailable: {last_error} (gave up after {attempts} "
                          f"attempts)", status=last_status, url=url, attempts=attempts)

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


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def from_config(config) -> CallCentreClient | None:
    """The client the app's configuration points at (None when no call centre is set up)."""
    url = config.get("CALLCENTRE_URL")
    if not url:
        return None
    return CallCentreClient(url, config.get("CALLCENTRE_API_KEY") or "",
                            timeout=float(config.get("CALLCENTRE_TIMEOUT") or 3))
