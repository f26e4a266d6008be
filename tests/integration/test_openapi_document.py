"""The OpenAPI document as a linter reads it (issue 20 §5): a licence, a 4XX on every operation
of the public document route, and the OsmAnd parameters the decoder accepts."""

from __future__ import annotations

import uuid

from portal.api.openapi import DOCUMENT_RATE_LIMIT


def document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_document_names_its_licence(client):
    assert document(client)["info"]["license"]["name"]


def test_the_document_route_describes_its_refusal(client):
    responses = document(client)["paths"]["/openapi.json"]["get"]["responses"]
    assert set(responses) == {"200", "429"}
    assert responses["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Refusal"}


def test_the_osmand_operation_lists_heading_and_altitude(client):
    paths = document(client)["paths"]
    [operation] = [op for path, ops in paths.items() if path.endswith("/osmand")
                   for method, op in ops.items() if method == "post"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"bearing", "heading", "altitude", "lat", "lon", "timestamp"} <= names


def test_a_scanner_reading_the_document_in_a_loop_is_slowed_down(app, client):
    # an address of its own, new on every run: the limit counts per address, in a store the
    # test workers share (resetting it would reset their login limits too)
    scanner = {"REMOTE_ADDR": f"2001:db8::{uuid.uuid4().hex[:4]}"}
    limit = int(DOCUMENT_RATE_LIMIT.split()[0])
    statuses = [client.get("/api/v1/openapi.json", environ_base=scanner).status_code
                for _ in range(limit + 1)]
    assert statuses[:limit] == [200] * limit
    assert statuses[-1] == 429
    refused = client.get("/api/v1/openapi.json", environ_base=scanner)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert client.get("/api/v1/openapi.json").status_code == 200  # others still read it
