"""The W4 simulator over real HTTP, driven by the real client: pagination, cursor, auth and
fault knobs (error rate, outage mid-pagination, malformed records, latency)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from integrations.fields import Quarantine, Row
from integrations.http import AuthError, Unavailable
from integrations.sandbox import SIMULATORS, get
from integrations.sandbox._api import ServerThread
from integrations.sandbox.w4_server import DEFAULT_API_KEY, create_app
from integrations.w4.client import W4Client
from integrations.w4.transform import transform_card


@pytest.fixture(scope="module")
def cards():
    from integrations.sandbox.w4_server import seed_cards

    return seed_cards(120, 180)


@pytest.fixture
def server(cards):
    with ServerThread(create_app(cards)) as running:
        yield running


def w4(server, **kwargs):
    kwargs.setdefault("sleep", lambda seconds: None)  # no real waiting between retries
    kwargs.setdefault("page_size", 10)
    return W4Client(server.url, DEFAULT_API_KEY, **kwargs)


def set_faults(server, **knobs):
    response = requests.put(f"{server.url}/_sandbox/faults", json=knobs, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def all_keys(client, **kwargs):
    keys, last = [], None
    for page in client.card_pages(**kwargs):
        keys += [r["contract_number"] for r in page.data]
        last = page
    return keys, last


def test_every_card_once_in_order_of_change(server, cards):
    client = w4(server)
    keys, last = all_keys(client)
    assert sorted(keys) == sorted(c["contract_number"] for c in cards)
    assert len(keys) == len(set(keys)) and len(cards) > 20
    assert client.stats.pages == -(-len(cards) // 10) and client.stats.retries == 0
    assert last.next_cursor is None and last.cursor
    first = requests.get(f"{server.url}/api/v1/cards", params={"limit": 5},
                         headers={"X-API-Key": DEFAULT_API_KEY}, timeout=5).json()
    stamps = [r["updated_at"] for r in first["data"]]
    assert stamps == sorted(stamps) and first["total"] == len(cards)


def test_the_stored_cursor_brings_only_what_changed_since(server):
    client = w4(server)
    _, last = all_keys(client)
    assert all_keys(client, cursor=last.cursor)[0] == []  # nothing changed since
    touched = requests.post(f"{server.url}/_sandbox/touch", json={"count": 7},
                            timeout=5).json()["touched"]
    keys, newer = all_keys(client, cursor=last.cursor)
    assert sorted(keys) == sorted(touched)
    assert newer.cursor > last.cursor
    changed = [transform_card(r) for p in client.card_pages(cursor=last.cursor) for r in p.data]
    assert all(isinstance(r, Row) for r in changed)


def test_updated_since_is_inclusive(server):
    client = w4(server)
    everything, _ = all_keys(client)
    body = requests.get(f"{server.url}/api/v1/cards", params={"limit": 1000},
                        headers={"X-API-Key": DEFAULT_API_KEY}, timeout=5).json()
    middle = body["data"][len(body["data"]) // 2]
    keys, _ = all_keys(client, updated_since=middle["updated_at"])
    assert keys == everything[len(everything) // 2:]


def test_a_wrong_or_missing_api_key_is_refused(server):
    with pytest.raises(AuthError, match="invalid API key"):
        list(W4Client(server.url, "wrong").card_pages())
    response = requests.get(f"{server.url}/api/v1/cards", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_the_client_retries_through_a_50_percent_error_rate(server, cards):
    set_faults(server, error_rate=0.5)
    client = w4(server, retries=10)
    keys, _ = all_keys(client)
    assert sorted(keys) == sorted(c["contract_number"] for c in cards)
    assert client.stats.retries > 3  # it really met errors
    assert client.stats.failures == 0


def test_an_outage_is_reported_clearly(server):
    set_faults(server, outage=True)
    client = w4(server, retries=2)
    with pytest.raises(Unavailable) as info:
        list(client.card_pages())
    assert info.value.status == 503 and info.value.attempts == 3
    assert "W4 unavailable" in str(info.value) and "maintenance" in str(info.value)
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200  # still alive


def test_an_outage_mid_pagination_resumes_from_the_cursor_without_duplicates(server, cards):
    set_faults(server, outage_after=4)  # three pages, then W4 goes down
    client = w4(server, retries=1)
    loaded, cursor = [], None
    with pytest.raises(Unavailable):
        for page in client.card_pages():
            loaded += [r["contract_number"] for r in page.data]
            cursor = page.cursor  # stored after each page, as the sync does
    assert len(loaded) == 40 and cursor
    set_faults(server, outage=False, outage_after=None)
    for page in w4(server).card_pages(cursor=cursor):
        loaded += [r["contract_number"] for r in page.data]
    assert len(loaded) == len(set(loaded)) == len(cards)


def test_malformed_records_are_quarantined_not_fatal(server, cards):
    set_faults(server, malformed_rate=0.2)
    results = [transform_card(r, number=i) for p in w4(server).card_pages()
               for i, r in enumerate(p.data)]
    bad = [r for r in results if isinstance(r, Quarantine)]
    good = [r for r in results if isinstance(r, Row)]
    assert len(results) == len(cards)
    assert 0 < len(bad) < len(cards) // 2 and len(good) == len(cards) - len(bad)
    assert any("full PAN" in q.reason for q in bad) or any("days_past_due" in q.reason
                                                          for q in bad)


def test_latency_beyond_the_timeout_is_an_outage(server):
    set_faults(server, latency_ms=400)
    with pytest.raises(Unavailable, match="timed out"):
        list(w4(server, timeout=0.1, retries=1).card_pages())


def test_fault_knobs_are_validated_and_reset(server):
    bad = requests.put(f"{server.url}/_sandbox/faults", json={"error_rate": 3}, timeout=5)
    assert bad.status_code == 400
    assert requests.put(f"{server.url}/_sandbox/faults", json={"nope": 1},
                        timeout=5).status_code == 400
    set_faults(server, outage=True)
    requests.post(f"{server.url}/_sandbox/reset", timeout=5)
    assert requests.get(f"{server.url}/_sandbox/faults", timeout=5).json()["outage"] is False


def test_the_duplicates_knob_repeats_a_record_across_pages(server, cards):
    set_faults(server, duplicates=True)
    keys, _ = all_keys(w4(server))
    assert len(keys) > len(set(keys)) == len(cards)


def test_faults_from_the_environment(monkeypatch, cards):
    monkeypatch.setenv("W4_SANDBOX_OUTAGE", "true")
    with ServerThread(create_app(cards[:3])) as running, pytest.raises(Unavailable):
        list(w4(running, retries=0).card_pages())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("name", [s.name for s in SIMULATORS if s.kind == "http"])
def test_the_registered_simulators_run_as_modules(name):
    simulator = get(name)
    port = _free_port()
    command = simulator.command(sys.executable, port=port)
    command += ["--customers", "20", "--products", "30"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, "simulator exited early"
                assert time.monotonic() < deadline, "simulator did not start"
                time.sleep(0.2)
        assert health.json()["system"] == simulator.system
    finally:
        process.terminate()
        process.communicate(timeout=10)  # reaps it and closes the pipe
