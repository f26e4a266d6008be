"""REST client of the GPS tracking system: POST positions, POST verify, GET route."""

from __future__ import annotations

from flask import current_app

from integrations.http import JsonApiClient


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
