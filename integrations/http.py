"""A small JSON REST client shared by the HTTP adapters (W4, LOS, payments, GPS, call centre):
authentication headers, timeouts, an optional circuit breaker, retries with exponential backoff
and jitter on 5xx / 429 / timeouts / refused connections, a tracing CLIENT span and W3C
``traceparent`` header on every attempt (portal/tracing.py), and keyset pagination with a resumable
cursor (docs/integrations.md, "Paginated JSON APIs").

Pagination contract (both W4 and LOS): ``GET <path>?limit=N[&cursor=C | &updated_since=T]``
answers ``{"data": [...], "cursor": C', "next_cursor": C' | null, "total": n}``. Records come in
``(updated_at, key)`` order; ``cursor`` is the position just after the page's last record and
``next_cursor`` is the same position when more records follow (null on the last page). A caller
that stores ``cursor`` after loading each page can stop at any moment (an outage, a killed
worker) and resume from it later with nothing skipped and nothing loaded twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests

from portal.tracing import http_client_span

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    """A request the remote system refused or could not answer.

    ``status`` and ``code`` are the system's HTTP status and error code (``{"error": {"code",
    "message"}}``), ``remote_message`` its own message, when it answered; ``refused`` tells a
    system that answered and said no (4xx: it is up) from one that could not be reached
    (``Unavailable``)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 url: str | None = None, attempts: int = 1, remote_message: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.url = url
        self.attempts = attempts
        self.remote_message = remote_message

    @property
    def refused(self) -> bool:
        """The system answered and refused the request (a 4xx with its code and message)."""
        return self.status is not None and 400 <= self.status < 500


class AuthError(ApiError):
    """401/403: the credentials are wrong or lack permission (not retried)."""


class Unavailable(ApiError):
    """The system did not answer successfully after every retry (outage, timeouts, 5xx, 429,
    or the circuit breaker open): it could not be reached, it refused nothing."""

    @property
    def refused(self) -> bool:
        return False


@dataclass
class Page:
    data: list[dict]
    cursor: str | None  # position after this page: store it once the page is loaded
    next_cursor: str | None  # None on the last page
    total: int | None  # records from the request's position to the end, when the API says
    number: int  # 1-based page number within this run


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0
    pages: int = 0
    records: int = 0
    errors: list[str] = field(default_factory=list)


class JsonApiClient:
    """Base client; subclasses set ``name`` and implement :meth:`auth_headers`."""

    name = "API"

    def __init__(self, base_url: str, *, timeout: float = 10.0, retries: int = 4,
                 backoff: float = 0.5, max_backoff: float = 8.0, page_size: int = 200,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, breaker=None):
        self.base_url = base_url.rstrip("/")
        # optional circuit breaker (integrations/control.py Breaker): asked before each request,
        # told the outcome after its retries; None: no breaker
        self.breaker = breaker
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.page_size = page_size
        self.session = session or requests.Session()
        self.sleep = sleep
        self.stats = ClientStats()

    def auth_headers(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one request, with retries -------------------------------------------------------------
    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff, max(0.0, float(retry_after)))
            except ValueError:
                pass
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not security

    def get_json(self, path: str, params: dict | None = None) -> dict:
        return self._guarded("GET", path, params=params)

    def get_list(self, path: str, params: dict | None = None) -> list[dict]:
        """``GET`` an answer ``{"data": [...]}`` (one customer's records) and return the list."""
        body = self.get_json(path, params)
        data = body.get("data")
        if not isinstance(data, list):
            raise ApiError(f"{self.name}: answer has no 'data' list", url=path)
        return data

    def post_json(self, path: str, body: dict) -> dict:
        """POST a JSON body, with the same retry rules as ``get_json`` (5xx/429/timeouts
        retried with backoff): the caller's request must be safe to repeat."""
        return self.send_json("POST", path, body)

    def send_json(self, method: str, path: str, body: dict | None = None) -> dict:
        """``method`` (POST, PUT, ...) ``path`` with a JSON body (``{}`` when None), behind the
        breaker and retried as ``get_json`` is: the caller's request must be safe to repeat."""
        return self._guarded(method, path, json=body or {})

    def _guarded(self, method: str, path: str, **kwargs) -> dict:
        """The request behind the circuit breaker, when the client has one."""
        if self.breaker is None:
            return self._request_json(method, path, **kwargs)
        if not self.breaker.allow():
            self.stats.failures += 1
            raise Unavailable(f"{self.name} unavailable: circuit breaker open (not called)",
                              code="breaker_open", url=f"{self.base_url}{path}", attempts=0)
        try:
            body = self._request_json(method, path, **kwargs)
        except Unavailable as exc:
            self.breaker.record_failure(exc)
            raise
        except ApiError:
            self.breaker.record_success()  # it answered (4xx, bad body): the system is up
            raise
        self.breaker.record_success()
        return body

    def _request_json(self, method: str, path: str, *, params: dict | None = None,
                      json: dict | None = None) -> dict:
        url = f"{self.base_url}{path}"
        headers = {"Accept": "application/json", **self.auth_headers()}
        attempts = self.retries + 1
        last_error = "no attempt made"
        last_status = None
        for attempt in range(1, attempts + 1):
            self.stats.requests += 1
            retry_after = None
            try:
                # one CLIENT span per attempt; the traceparent sent names it as the parent
                with http_client_span(method, url, system=self.name,
                                      resend_count=attempt - 1) as call:
                    sent = {**headers, **call.headers}
                    if method == "GET":
                        response = self.session.get(url, params=params, headers=sent,
                                                    timeout=self.timeout)
                    else:
                        response = self.session.request(method, url, params=params, json=json,
                                                        headers=sent, timeout=self.timeout)
                    call.status(response.status_code)
            except requests.Timeout:
                last_error, last_status = f"timed out after {self.timeout}s", None
            except requests.ConnectionError as exc:
                last_error, last_status = f"connection failed: {type(exc).__name__}", None
            else:
                status = response.status_code
                if status in (401, 403):
                    self.stats.failures += 1
                    raise AuthError(f"{self.name} refused the credentials ({status}): "
                                    f"{_error_message(response)}", status=status,
                                    code=_error_code(response), url=url, attempts=attempt,
                                    remote_message=_error_message(response))
                if status not in RETRY_STATUSES:
                    if status >= 400:
                        self.stats.failures += 1
                        raise ApiError(f"{self.name} answered {status}: "
                                       f"{_error_message(response)}", status=status,
                                       code=_error_code(response), url=url, attempts=attempt,
                                       remote_message=_error_message(response))
                    try:
                        body = response.json()
                    except ValueError as exc:
                        last_error, last_status = "answer is not JSON", status
                        if attempt < attempts:
                            self.stats.retries += 1
                            self.sleep(self._delay(attempt, None))
                            continue
                        self.stats.failures += 1
                        raise Unavailable(f"{self.name}: {last_error}", status=status,
                                          url=url, attempts=attempt) from exc
                    if not isinstance(body, dict):
                        self.stats.failures += 1
                        raise ApiError(f"{self.name}: answer is not a JSON object",
                                       status=status, url=url, attempts=attempt)
                    return body
                last_error = f"HTTP {status}: {_error_message(response)}"
                last_status = status
                retry_after = response.headers.get("Retry-After")
            if attempt < attempts:
                self.stats.retries += 1
                self.sleep(self._delay(attempt, retry_after))
        self.stats.failures += 1
        self.stats.errors.append(last_error)
        raise Unavailable(f"{self.name} unavailable: {last_error} (gave up after {attempts} "
                          f"attempts)", status=last_status, url=url, attempts=attempts)

    # -- pagination ----------------------------------------------------------------------------
    def pages(self, path: str, *, cursor: str | None = None, updated_since: str | None = None,
              limit: int | None = None) -> Iterator[Page]:
        """Every page from ``cursor`` (a stored position) or ``updated_since`` (an ISO
        timestamp, inclusive) to the end. Each request is retried on its own, so an outage
        mid-way raises :class:`Unavailable` after the pages already yielded."""
        params: dict[str, str | int] = {"limit": limit or self.page_size}
        if cursor:
            params["cursor"] = cursor
        elif updated_since:
            params["updated_since"] = updated_since
        number = 0
        while True:
            body = self.get_json(path, params)
            data = body.get("data")
            if not isinstance(data, list):
                raise ApiError(f"{self.name}: page has no 'data' list", url=path)
            for name in ("cursor", "next_cursor"):  # positions are stored and sent back
                if body.get(name) is not None and not isinstance(body[name], str):
                    raise ApiError(f"{self.name}: page's '{name}' is not a string", url=path)
            number += 1
            page = Page(data=data, cursor=body.get("cursor") or params.get("cursor"),
                        next_cursor=body.get("next_cursor"), total=body.get("total"),
                        number=number)
            self.stats.pages += 1
            self.stats.records += len(data)
            yield page
            if not page.next_cursor:
                return
            if page.next_cursor == params.get("cursor"):
                raise ApiError(f"{self.name}: pagination does not advance", url=path)
            params = {"limit": params["limit"], "cursor": page.next_cursor}


def _error_body(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error_message(response: requests.Response) -> str:
    return str(_error_body(response).get("message") or response.reason or "")[:300]


def _error_code(response: requests.Response) -> str | None:
    code = _error_body(response).get("code")
    return str(code) if code else None
