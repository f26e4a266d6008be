"""Visit verification by the GPS system (its own track of the agent), with graceful degradation:
``remote_verifier()`` returns a callable for ``portal.field.visits.checkin`` that answers the
GPS system's decision, or None when the system is not configured, its circuit is open, or it
fails — the service then applies the local distance rule."""

from __future__ import annotations

import logging
from collections.abc import Callable

from integrations.gps import circuit
from integrations.gps.client import GpsClient
from integrations.http import ApiError

log = logging.getLogger(__name__)


def remote_verifier(client: GpsClient | None = None) -> Callable[..., dict | None] | None:
    client = client or GpsClient.from_config(retries=1, backoff=0.2, max_backoff=0.5)
    if client is None:
        return None

    def ask(*, agent: str, lat: float, lon: float, accuracy_m: float | None, target_lat: float,
            target_lon: float, radius_m: float, at: str) -> dict | None:
        if circuit.is_open():
            return None
        try:
            answer = client.verify(agent=agent, lat=lat, lon=lon, accuracy_m=accuracy_m,
                                   target_lat=target_lat, target_lon=target_lon,
                                   radius_m=radius_m, at=at)
        except ApiError as exc:
            circuit.record_failure()
            log.warning("GPS verify unavailable, local rule decides", extra={"error": str(exc)})
            return None
        circuit.record_success()
        if not isinstance(answer.get("verified"), bool):
            log.warning("GPS verify answer without 'verified'", extra={"answer": answer})
            return None
        return answer

    return ask
