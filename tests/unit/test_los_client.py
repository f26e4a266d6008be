"""The LOS client: bearer token, pagination path (retries are shared with W4's client)."""

from __future__ import annotations

import pytest

from integrations.http import AuthError
from integrations.los.client import LOSClient
from tests.unit.test_w4_client import FakeResponse, FakeSession


def test_bearer_token_and_pages():
    session = FakeSession([
        FakeResponse(200, {"data": [{"application_id": "A1"}], "cursor": "c1",
                           "next_cursor": "c1"}),
        FakeResponse(200, {"data": [{"application_id": "A2"}], "cursor": "c2",
                           "next_cursor": None}),
    ])
    client = LOSClient("http://los.test", "t0ken", session=session, sleep=lambda s: None)
    ids = [r["application_id"] for p in client.application_pages(limit=1) for r in p.data]
    assert ids == ["A1", "A2"]
    assert session.calls[0]["url"] == "http://los.test/api/v1/applications"
    assert session.calls[0]["headers"]["Authorization"] == "Bearer t0ken"
    assert session.calls[1]["params"] == {"limit": 1, "cursor": "c1"}


def test_a_refused_token():
    session = FakeSession([FakeResponse(401, {"error": {"message": "invalid Bearer token"}})])
    client = LOSClient("http://los.test", "bad", session=session, sleep=lambda s: None)
    with pytest.raises(AuthError, match="LOS refused"):
        list(client.application_pages())
