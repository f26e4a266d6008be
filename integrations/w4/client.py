"""The W4 card system's REST API: ``GET /api/v1/cards`` with an ``X-API-Key`` header, keyset
pagination and an ``updated_since`` cursor (docs/integrations.md, "W4")."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from integrations.http import JsonApiClient, Page

CARDS_PATH = "/api/v1/cards"
CLIENT_CARDS_PATH = "/api/v1/clients/{cif}/cards"


class W4Client(JsonApiClient):
    name = "W4"

    def __init__(self, base_url: str, api_key: str, **kwargs):
        super().__init__(base_url, **kwargs)
        self.api_key = api_key

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def card_pages(self, *, cursor: str | None = None, updated_since: str | None = None,
                   limit: int | None = None) -> Iterator[Page]:
        """Pages of cards changed after ``cursor`` (the stored position of the last run), or
        since ``updated_since`` (ISO timestamp), or all cards when both are None."""
        return self.pages(CARDS_PATH, cursor=cursor, updated_since=updated_since, limit=limit)

    def card(self, contract_number: str) -> dict:
        return self.get_json(f"{CARDS_PATH}/{contract_number}")

    def client_cards(self, cif: str) -> list[dict]:
        """Every card of one client now (``{"data": [...]}``); a client W4 does not know is a
        404 (``ApiError`` with ``status`` 404)."""
        return self.get_list(CLIENT_CARDS_PATH.format(cif=quote(cif, safe="")))
