"""The LOS simulator over real HTTP with the LOS client: bearer auth, cursor, fault knobs."""

from __future__ import annotations

import pytest
import requests

from integrations.fields import Quarantine, Row
from integrations.http import AuthError, Unavailable
from integrations.los.client import LOSClient
from integrations.los.transform import transform_application
from integrations.sandbox._api import ServerThread
from integrations.sandbox.los_server import DEFAULT_TOKEN, create_app


@pytest.fixture(scope="module")
def applications():
    from integrations.sandbox.los_server import seed_applications

    return seed_applications(150, 220)


@pytest.fixture
def server(applications):
    with ServerThread(create_app(applications)) as running:
        yield running


def los(server, **kwargs):
    kwargs.setdefault("sleep", lambda seconds: None)
    kwargs.setdefault("page_size", 10)
    return LOSClient(server.url, DEFAULT_TOKEN, **kwargs)


def set_faults(server, **knobs):
    assert requests.put(f"{server.url}/_sandbox/faults", json=knobs, timeout=5).ok


def test_applications_with_referees_become_rows(server, applications):
    results = [transform_application(r) for p in los(server).application_pages() for r in p.data]
    assert len(results) == len(applications) > 10
    assert all(isinstance(r, Row) for r in results)
    disbursed = [r for r in results if r.values["status"] == "DISBURSED"]
    assert disbursed and all(r.values["account_number"] for r in disbursed)
    references = [ref for r in results for ref in r.contacts["reference_customers"]]
    assert references and all(ref["ref_cif"].startswith("LR") for ref in references)
    assert all(ref["primary_cif"] == r.values["cif"] for r in results
               for ref in r.contacts["reference_customers"])


def test_bearer_token_is_required(server):
    with pytest.raises(AuthError, match="invalid Bearer token"):
        list(LOSClient(server.url, "nope").application_pages())
    response = requests.get(f"{server.url}/api/v1/applications",
                            headers={"Authorization": "Basic abc"}, timeout=5)
    assert response.status_code == 401


def test_incremental_sync_from_the_cursor(server):
    client = los(server)
    last = list(client.application_pages())[-1]
    touched = requests.post(f"{server.url}/_sandbox/touch", json={"count": 5},
                            timeout=5).json()["touched"]
    changed = [r for p in client.application_pages(cursor=last.cursor) for r in p.data]
    assert sorted(r["application_id"] for r in changed) == sorted(touched)
    assert all(isinstance(transform_application(r), Row) for r in changed)


def test_retries_through_errors_and_reports_an_outage(server, applications):
    set_faults(server, error_rate=0.5)
    client = los(server, retries=10)
    assert sum(len(p.data) for p in client.application_pages()) == len(applications)
    assert client.stats.retries > 0
    set_faults(server, error_rate=0, outage=True)
    with pytest.raises(Unavailable, match="LOS unavailable"):
        list(los(server, retries=1).application_pages())


def test_malformed_applications_are_quarantined(server, applications):
    set_faults(server, malformed_rate=0.25)
    results = [transform_application(r) for p in los(server).application_pages() for r in p.data]
    bad = [r for r in results if isinstance(r, Quarantine)]
    assert 0 < len(bad) < len(results) == len(applications)
    assert all(q.payload is not None and q.reason for q in bad)
