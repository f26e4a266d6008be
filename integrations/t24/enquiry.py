"""T24's per-customer enquiry: one customer's position now (CUSTOMER, arrangements and their
bills, LD contracts and their past-due records, collaterals and their links), in T24's field
names, over HTTP (``T24_ENQUIRY_URL``; the sandbox twin is integrations/sandbox/t24_enquiry.py,
production points it at the bank's enquiry service).

``GET <T24_ENQUIRY_URL>/api/v1/enquiries/CRM.CUSTOMER.POSITION?customerId=<cif>`` with
``X-API-Key`` answers ``{"header": {"businessDate": "YYYYMMDD", …}, "body": [{"source":
"customers", "record": {"@ID": …, FIELD: value | [values] | [[sub-values]]}}, …]}``; a customer
T24 does not know is a 404.

Applied through **the file sync's own path**: the body is written as a small *delta* file set of
the enquiry's mapping profile (``T24_ENQUIRY_PROFILE``, default the daily files' own
``T24_MAPPING_PROFILE``: one mapping, one set of natural keys) — for a mapped profile such as
``t24-dfe`` (T24's field names, integrations/t24/mappings/t24-dfe.toml) one CSV per source in
the profile's dialect, a multi-value joined with the profile's value mark, its sub-values with
the sub-value mark; for the native ``crm-json`` one JSON Lines file per entity — with its
manifest, then verified and loaded by ``integrations.t24.load.load_set``: the same mapping,
staging, change capture, contacts reconciliation, bucket history, events and run row (kind
``refresh``). A delta set closes no loan; a record that does not map is quarantined as in the
daily load.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

from psycopg import Connection

from integrations.http import ApiError, JsonApiClient
from integrations.t24.formats import data_file_name
from integrations.t24.load import LoadResult, load_set
from integrations.t24.manifest import FileEntry, Manifest, verify
from integrations.t24.mapping import Profile
from portal import clock

ENQUIRY = "CRM.CUSTOMER.POSITION"
ENQUIRY_PATH = f"/api/v1/enquiries/{ENQUIRY}"


class T24EnquiryClient(JsonApiClient):
    name = "T24"

    def __init__(self, base_url: str, api_key: str, **kwargs):
        super().__init__(base_url, **kwargs)
        self.api_key = api_key

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def customer_position(self, cif: str) -> dict:
        """The enquiry's answer for ``cif`` (header and body checked); 404: ``ApiError``."""
        body = self.get_json(ENQUIRY_PATH, {"customerId": cif})
        header, records = body.get("header"), body.get("body")
        if not isinstance(header, dict) or not isinstance(records, list):
            raise ApiError(f"{self.name}: enquiry answer has no header and body list",
                           url=quote(ENQUIRY_PATH))
        try:
            business_date(body)
        except (TypeError, ValueError) as exc:
            raise ApiError(f"{self.name}: enquiry header has no valid businessDate") from exc
        return body


def business_date(position: dict) -> date:
    return datetime.strptime(str(position["header"]["businessDate"]), "%Y%m%d").date()


def _field(value, vm: str, sm: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return vm.join(sm.join("" if s is None else str(s) for s in v) if isinstance(v, list)
                       else ("" if v is None else str(v)) for v in value)
    return str(value)


def write_set(position: dict, directory: Path, profile: Profile) -> Path:
    """The enquiry's records as a delta file set of ``profile`` in ``directory``; returns the
    manifest's path. A record of a source the profile does not read is refused (ApiError)."""
    day = business_date(position)
    by_source: dict[str, list[dict]] = {}
    for item in position["body"]:
        source = item.get("source") if isinstance(item, dict) else None
        record = item.get("record") if isinstance(item, dict) else None
        if source not in profile.sources or not isinstance(record, dict):
            raise ApiError(f"T24: enquiry record of an unknown source {source!r}")
        by_source.setdefault(source, []).append(record)
    vm, sm = profile.value_mark, profile.subvalue_mark
    entries = []
    for source in profile.sources:  # the profile's load order
        records = by_source.get(source)
        if not records:
            continue
        if profile.native:  # our own records: JSON Lines, as the daily files
            fmt = "jsonl"
            data = "".join(json.dumps(record, ensure_ascii=False) + "\n"
                           for record in records).encode("utf-8")
        else:
            fmt = "csv"
            header = list(dict.fromkeys(name for record in records for name in record))
            buffer = io.StringIO()
            writer = csv.writer(buffer, delimiter=profile.dialect.delimiter,
                                quotechar=profile.dialect.quote, lineterminator="\n")
            writer.writerow(header)
            for record in records:
                writer.writerow([_field(record.get(name), vm, sm) for name in header])
            data = buffer.getvalue().encode(profile.dialect.encoding)
        name = data_file_name(source, day, fmt, tuple(profile.sources))
        (directory / name).write_bytes(data)
        entries.append(FileEntry(entity=source, name=name, records=len(records),
                                 sha256=hashlib.sha256(data).hexdigest(), format=fmt,
                                 bytes=len(data)))
    manifest = Manifest(business_date=day, mode="delta", files=entries,
                        generated_at=clock.running_now().replace(microsecond=0))
    return manifest.write(directory / f"t24_manifest_{day:%Y%m%d}.json")


def apply_position(conn: Connection, position: dict, profile: Profile, *, cif: str,
                   triggered_by_id: int | None = None, correlation_id: str | None = None,
                   on_change: Callable[[str, str, bool, dict], None] | None = None
                   ) -> LoadResult:
    """Load one customer's enquiry answer as a delta set (a run of kind ``refresh``)."""
    with tempfile.TemporaryDirectory(prefix="t24-enquiry-") as tmp:
        manifest = write_set(position, Path(tmp), profile)
        return load_set(conn, verify(manifest, profile=profile, count=False),
                        trigger="manual", triggered_by_id=triggered_by_id,
                        correlation_id=correlation_id, on_change=on_change,
                        kind="refresh", note=f"customer {cif}", read_ahead=False)
