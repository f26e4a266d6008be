"""REST client of the GPS tracking system: POST positions, POST verify, GET route."""

from __future__ import annotations

import requests
from flask import current_app

from integrations.http import (
    RETRY_STATUSES,
    ApiError,
    AuthError,
    JsonApiClient,
    Unavailable,
    _error_code,
    _error_message,
)


class GpsClient(JsonApiClient):
    name = "GPS"

    def __init__(self, base_url: str, api_key: str, **kwargs):
        super().__init__(base_url, **kwargs)
        self.api_key = api_key

    @classmethod
    def from_config(cls, **kwargs) -> GpsClient | None:
        """A client for the configured GPS system, or None when none is configured."""
        url = current_app.config.get("GPS_API_URL")
        if not url:
            return None
        kwargs.setdefault("timeout", current_app.config.get("GPS_TIMEOUT_SECONDS", 5))
        return cls(url, current_app.config.get("GPS_API_KEY", ""), **kwargs)

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def post_json(self, path: str, body: dict) -> dict:
        """POST with the base client's retry rules (5xx/429/timeouts retried with backoff)."""
        url = f"{self.base_url}{path}"
        headers = {"Accept": "application/json", **self.auth_headers()}
        attempts = self.retries + 1
        last_error, last_status = "no attempt made", None
        for attempt in range(1, attempts + 1):
            self.stats.requests += 1
            retry_after = None
            try:
                response = self.session.post(url, json=body, headers=headers,
                                             timeout=self.timeout)
            except requests.Timeout:
                last_error, last_status = f"timed out after {self.timeout}s", None
            except requests.ConnectionError as exc:
                last_error, last_status = f"connection failed: {type(exc).__name__}", None
            else:
                status = response.status_code
                if status in (401, 403):
                    self.stats.failures += 1
                    raise AuthError(f"GPS refused the credentials ({status}): "
                                    f"{_error_message(response)}", status=status,
                                    code=_error_code(response), url=url, attempts=attempt)
                if status not in RETRY_STATUSES:
                    if status >= 400:
                        self.stats.failures += 1
                        raise ApiError(f"GPS answered {status}: {_error_message(response)}",
                                       status=status, code=_error_code(response), url=url,
                                       attempts=attempt)
                    try:
                        answer = response.json()
                    except ValueError:
                        answer = None
                    if isinstance(answer, dict):
                        return answer
                    last_error, last_status = "answer is not a JSON object", status
                else:
                    last_error = f"HTTP {status}: {_error_message(response)}"
                    last_status = status
                    retry_after = response.headers.get("Retry-After")
            if attempt < attempts:
                self.stats.retries += 1
                self.sleep(self._delay(attempt, retry_after))
        self.stats.failures += 1
        self.stats.errors.append(last_error)
        raise Unavailable(f"GPS unavailable: {last_error} (gave up after {attempts} attempts)",
                          status=last_status, url=url, attempts=attempts)

    def send_positions(self, positions: list[dict]) -> dict:
        return self.post_json("/api/v1/positions", {"positions": positions})

    def verify(self, *, agent: str, lat: float, lon: float, accuracy_m: float | None,
               target_lat: float, target_lon: float, radius_m: float, at: str) -> dict:
        return self.post_json("/api/v1/verify", {
            "agent": agent, "lat": lat, "lon": lon, "accuracy_m": accuracy_m,
            "target": {"lat": target_lat, "lon": target_lon}, "radius_m": radius_m, "at": at,
        })

    def route(self, agent: str, day: str) -> dict:
        return self.get_json(f"/api/v1/agents/{agent}/route", {"date": day})
