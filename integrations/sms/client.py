"""The SMS gateway's REST API (``X-API-Key``; docs/integrations.md, "SMS gateway"):

- ``POST /api/v1/messages`` ``{"to": "+84…", "text": "…", "reference": "<our id>",
  "callback_url": "…" | null}`` → 202 ``{"id": "<provider id>", "status": "accepted",
  "segments": n, "encoding": "GSM-7" | "UCS-2"}``. ``reference`` makes a resend of the same
  message safe: the gateway answers the first id again and sends nothing twice.
- ``GET /api/v1/messages/<id>`` → ``{"id", "reference", "status", ...}``

Requests go through the shared client (integrations/http.py): retries with backoff on 5xx/429/
timeouts (few and short: the dispatcher retries a failed message later with its own backoff),
behind the gateway's circuit breaker (``SMS``, integrations/control.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.control import breaker
from integrations.http import ApiError, JsonApiClient

MESSAGES_PATH = "/api/v1/messages"
SYSTEM = "SMS"
DEV_API_KEY = "sandbox-sms-key"  # the sandbox gateway's default; never in production


@dataclass(frozen=True)
class Accepted:
    provider_id: str
    status: str
    segments: int | None = None


class SmsGatewayClient(JsonApiClient):
    name = "SMS gateway"

    def __init__(self, base_url: str, api_key: str, *, callback_url: str | None = None,
                 **kwargs):
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("backoff", 0.2)
        super().__init__(base_url, **kwargs)
        self.api_key = api_key
        self.callback_url = callback_url

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def send(self, to: str, text: str, *, reference: str) -> Accepted:
        """Hand one SMS to the gateway; raises ``Unavailable`` (not reached: try later) or
        ``ApiError`` with ``refused`` (the gateway said no: a bad number, for good)."""
        body = self.post_json(MESSAGES_PATH, {"to": to, "text": text, "reference": reference,
                                              "callback_url": self.callback_url})
        provider_id = body.get("id")
        if not isinstance(provider_id, str) or not provider_id:
            raise ApiError(f"{self.name}: the answer has no message id", url=MESSAGES_PATH)
        return Accepted(provider_id, str(body.get("status") or "accepted"),
                        body.get("segments") if isinstance(body.get("segments"), int) else None)

    def status(self, provider_id: str) -> dict:
        return self.get_json(f"{MESSAGES_PATH}/{provider_id}")


def from_config(config) -> SmsGatewayClient | None:
    """The client the app's configuration points at (None when no gateway is set up)."""
    url = config.get("SMS_GATEWAY_URL")
    if not url:
        return None
    return SmsGatewayClient(url, config.get("SMS_GATEWAY_API_KEY") or "",
                            callback_url=config.get("SMS_DELIVERY_REPORT_URL") or None,
                            timeout=float(config.get("SMS_GATEWAY_TIMEOUT") or 5),
                            breaker=breaker(SYSTEM))
