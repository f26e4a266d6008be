"""The REST client shared by W4 and LOS: retries with backoff, clear errors, pagination."""

from __future__ import annotations

import pytest
import requests

from integrations.http import ApiError, AuthError, Unavailable
from integrations.w4.client import W4Client


class FakeResponse:
    def __init__(self, status=200, body=None, headers=None, text=None):
        self.status_code = status
        self._body = body
        self.headers = headers or {}
        self.reason = {200: "OK", 401: "Unauthorized", 500: "Internal Server Error",
                       503: "Service Unavailable", 404: "Not Found"}.get(status, "")
        self._text = text

    def json(self):
        if self._text is not None:
            raise ValueError("not json")
        return self._body


class FakeSession:
    """Answers requests from a script: a list of FakeResponse or exceptions."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def get(self, url, params=None, headers=None, timeout=None):
        self.calls.append({"url": url, "params": dict(params or {}), "headers": headers,
                           "timeout": timeout})
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        pass


def client(script, **kwargs):
    sleeps = []
    session = FakeSession(script)
    c = W4Client("http://w4.test/", "k3y", session=session, sleep=sleeps.append, **kwargs)
    return c, session, sleeps


def page(data, cursor=None, next_cursor=None):
    return FakeResponse(200, {"data": data, "cursor": cursor, "next_cursor": next_cursor,
                              "total": len(data)})


def test_the_api_key_is_sent_and_pages_are_followed():
    c, session, _ = client([page([{"n": 1}], "c1", "c1"), page([{"n": 2}], "c2", None)],
                           page_size=1)
    pages = list(c.card_pages(updated_since="2026-11-01T00:00:00Z"))
    assert [p.data for p in pages] == [[{"n": 1}], [{"n": 2}]]
    assert [p.cursor for p in pages] == ["c1", "c2"] and pages[-1].next_cursor is None
    assert session.calls[0]["url"] == "http://w4.test/api/v1/cards"
    assert session.calls[0]["headers"]["X-API-Key"] == "k3y"
    assert session.calls[0]["params"] == {"limit": 1, "updated_since": "2026-11-01T00:00:00Z"}
    assert session.calls[1]["params"] == {"limit": 1, "cursor": "c1"}
    assert (c.stats.pages, c.stats.records, c.stats.retries) == (2, 2, 0)


def test_a_stored_cursor_wins_over_updated_since():
    c, session, _ = client([page([], None, None)])
    (only,) = c.card_pages(cursor="stored", updated_since="2026-01-01")
    assert session.calls[0]["params"] == {"limit": 200, "cursor": "stored"}
    assert only.cursor == "stored"  # nothing new: the position stays where it was


def test_5xx_timeouts_and_refused_connections_are_retried_with_growing_backoff():
    c, session, sleeps = client([
        FakeResponse(500, {"error": {"code": "internal_error", "message": "boom"}}),
        requests.Timeout(), requests.ConnectionError(), FakeResponse(502),
        page([{"n": 1}], "c1")], retries=4, backoff=1.0, max_backoff=100)
    (only,) = c.card_pages()
    assert only.data == [{"n": 1}]
    assert c.stats.retries == 4 and len(session.calls) == 5
    assert len(sleeps) == 4
    for attempt, delay in enumerate(sleeps, start=1):  # jittered exponential: [b/2, b]
        base = 2 ** (attempt - 1)
        assert base / 2 <= delay <= base


def test_retry_after_is_honoured():
    c, _, sleeps = client([FakeResponse(503, {}, {"Retry-After": "3"}), page([], None)])
    list(c.card_pages())
    assert sleeps == [3.0]


def test_an_outage_is_reported_clearly_after_the_last_retry():
    c, session, sleeps = client([FakeResponse(503, {"error": {"message": "maintenance"}})] * 3,
                                retries=2)
    with pytest.raises(Unavailable) as info:
        list(c.card_pages())
    error = info.value
    assert error.status == 503 and error.attempts == 3 and len(session.calls) == 3
    assert "W4 unavailable" in str(error) and "maintenance" in str(error)
    assert "gave up after 3 attempts" in str(error)
    assert len(sleeps) == 2 and c.stats.failures == 1


def test_wrong_credentials_are_not_retried():
    c, session, _ = client([FakeResponse(401, {"error": {"code": "unauthorized",
                                                         "message": "invalid API key"}})])
    with pytest.raises(AuthError, match="invalid API key") as info:
        list(c.card_pages())
    assert info.value.code == "unauthorized" and len(session.calls) == 1


def test_a_client_error_is_not_retried():
    c, session, _ = client([FakeResponse(404, {"error": {"message": "no such card"}})])
    with pytest.raises(ApiError, match="404") as info:
        c.card("W4C1")
    assert not isinstance(info.value, Unavailable) and len(session.calls) == 1


def test_a_non_json_answer_is_retried_then_reported():
    c, _, _ = client([FakeResponse(200, text="<html>proxy error</html>")] * 2, retries=1)
    with pytest.raises(Unavailable, match="not JSON"):
        list(c.card_pages())


def test_a_page_without_data_or_a_stuck_cursor_is_an_error():
    c, _, _ = client([FakeResponse(200, {"items": []})])
    with pytest.raises(ApiError, match="no 'data' list"):
        list(c.card_pages())
    c, _, _ = client([page([{"n": 1}], "same", "same"), page([{"n": 1}], "same", "same")])
    with pytest.raises(ApiError, match="does not advance"):
        list(c.card_pages(cursor="same"))
