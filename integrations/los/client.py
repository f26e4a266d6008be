"""The LOS REST API: ``GET /api/v1/applications`` with ``Authorization: Bearer <token>``,
keyset pagination and an ``updated_since`` cursor (docs/integrations.md, "LOS")."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from integrations.http import JsonApiClient, Page

APPLICATIONS_PATH = "/api/v1/applications"
CUSTOMER_APPLICATIONS_PATH = "/api/v1/customers/{cif}/applications"


class LOSClient(JsonApiClient):
    name = "LOS"

    def __init__(self, base_url: str, token: str, **kwargs):
        super().__init__(base_url, **kwargs)
        self.token = token

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def application_pages(self, *, cursor: str | None = None, updated_since: str | None = None,
                          limit: int | None = None) -> Iterator[Page]:
        """Pages of applications (with their referees) changed after ``cursor`` or since
        ``updated_since``; all of them when both are None."""
        return self.pages(APPLICATIONS_PATH, cursor=cursor, updated_since=updated_since,
                          limit=limit)

    def customer_applications(self, cif: str) -> list[dict]:
        """Every application of one customer now (``{"data": [...]}``); a customer LOS does
        not know is a 404 (``ApiError`` with ``status`` 404)."""
        return self.get_list(CUSTOMER_APPLICATIONS_PATH.format(cif=quote(cif, safe="")))
