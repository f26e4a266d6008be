"""The payment system's daily transactions report: ``GET /api/v1/reports/<YYYY-MM-DD>/
transactions`` with an ``X-API-Key`` header, keyset pages (docs/integrations.md, "Payment
system"). Records use the webhook's field names, plus ``status`` (received, failed, reversed:
a payment's status today; a reversal is its own transaction with ``original_reference``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from integrations.control import breaker  # seen and forcible on the ops page
from integrations.http import JsonApiClient

REPORT_PATH = "/api/v1/reports/{day}/transactions"


class PaymentsClient(JsonApiClient):
    name = "PAYMENTS"

    def __init__(self, base_url: str, api_key: str, **kwargs):
        kwargs.setdefault("page_size", 500)
        super().__init__(base_url, **kwargs)
        self.api_key = api_key

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def transactions(self, business_date: date) -> Iterator[dict]:
        """Every transaction of ``business_date`` (bank zone), page after page."""
        for page in self.pages(REPORT_PATH.format(day=business_date.isoformat())):
            yield from page.data


def client_from_config(config) -> PaymentsClient:
    url = config.get("PAYMENTS_API_URL")
    if not url:
        raise RuntimeError("PAYMENTS_API_URL is not configured")

    return PaymentsClient(url, config.get("PAYMENTS_API_KEY") or "",
                          timeout=float(config.get("PAYMENTS_TIMEOUT_SECONDS") or 10),
                          breaker=breaker("PAYMENTS"))
