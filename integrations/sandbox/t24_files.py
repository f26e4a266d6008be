"""Sandbox twin of T24: writes the file set of a business date (full or delta; JSON Lines, JSON
array or XML) into a directory, with fault knobs.

Where the data comes from:

- ``DatabaseSource``: the T24 rows of a database (the demo's, after ``flask seed-demo``), so the
  files describe exactly the customers and loans the demo shows.
- ``SeedSource``: the demo's own generator (``portal.seed.portfolio``, same pools and random
  seed) run without a database, at any size — for tests and the benchmark.

Days: day 0 is the source as it is (business date ``base_date``). Day *k* is ``base_date + k``:
each record changes on a given day with a fixed probability, decided by a hash of its key and
the day (no state is kept, so any day can be produced again, identically). A loan that changes is
paid (cured), rolls into a later bucket, or is paid off (CLOSED). A full file holds every record
as of that day; a delta file only the records that changed that day and the ones new that day.

Fault knobs (:class:`T24Faults`): malformed records, a wrong count or a bad checksum in the
manifest, a half-written file, an XML file declaring an external entity.

Profiles: ``crm-json`` (our records, above) or ``t24-dfe`` (the same day as T24 Data Framework
CSV extracts: integrations/sandbox/t24_dfe.py).

Run it: ``python -m integrations.sandbox.t24_files --out DIR --day 0 --mode full``
(``--help`` lists every option).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

import psycopg

from integrations.sandbox.t24_dfe import DfeWriter
from integrations.t24.formats import (
    CONTROL_TOTAL_FIELDS,
    ENTITIES,
    LIST_FIELDS,
    NATURAL_KEYS,
    RECORD_ELEMENTS,
    XML_ROOT,
    data_file_name,
    manifest_name,
)
from integrations.t24.manifest import FileEntry, Manifest
from integrations.t24.mapping import SHIPPED, load_profile
from portal import clock
from portal.seed.context import RANDOM_SEED, FastRandom, SeedContext
from portal.seed.pools import Pools
from portal.seed.portfolio import COLUMNS, PortfolioGenerator, next_instalment

DEFAULT_TZ = "Asia/Ho_Chi_Minh"
AMOUNT_FIELDS = {"original_amount", "outstanding", "due_amount", "min_pay", "value"}
# How much more (or less) often than loans the other entities change on a day.
CHANGE_FACTORS = {"loans": 1.0, "customers": 0.5, "collaterals": 0.2,
                  "reference_customers": 0.1, "loan_collaterals": 0.0}
NEW_RECORD_BASE = 5_000_000  # new customers of day d get cifs from 10_000_000 + this + d*10_000


# -- deterministic hashing -----------------------------------------------------------------------
def _hash(*parts) -> int:
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _chance(probability: float, *parts) -> bool:
    return probability > 0 and _hash(*parts) % 1_000_000 < probability * 1_000_000


def record_key(entity: str, record: Mapping) -> str:
    return "|".join(str(record[k]) for k in NATURAL_KEYS[entity])


# -- wire values ---------------------------------------------------------------------------------
def wire_value(name: str, value):
    """A column value as written in a file: dates ISO, amounts as decimal strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6f}" if name in ("lat", "lon") else str(Decimal(str(value)))
    if isinstance(value, int) and name in AMOUNT_FIELDS:
        return str(value)
    return value


def _wire(names, row) -> dict:
    return {n: wire_value(n, v) for n, v in zip(names, row, strict=True)}


# -- sources -------------------------------------------------------------------------------------
class _Ids:
    """Stands in for the seed's BulkWriter: ids are only counted, nothing is written."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def ids(self, table: str, n: int) -> range:
        start = self._next.get(table, 1)
        self._next[table] = start + n
        return range(start, start + n)

    def next_id(self, table: str) -> int:
        return self.ids(table, 1).start


@cache
def _pools(seed: int):
    return Pools.build(seed)


PHONE_WIRE = ("type", "number", "is_primary", "is_verified", "do_not_contact")
ADDRESS_WIRE = ("type", "line1", "ward", "district", "city", "province", "country",
                "postal_code", "lat", "lon", "is_primary", "is_verified")
EMAIL_WIRE = ("type", "address", "is_primary", "is_verified")
CUSTOMER_WIRE = ("cif", "type", "name", "date_of_birth", "national_id", "gender", "company_name",
                 "registration_number", "tax_id", "segment", "status")
REFERENCE_WIRE = ("ref_cif", "primary_cif", "relationship_type", "type", "name",
                  "date_of_birth", "national_id", "gender")
LOAN_WIRE = ("account_number", "cif", "product_type", "currency", "original_amount",
             "outstanding", "due_amount", "min_pay", "next_payment_date", "dpd", "status",
             "disbursement_date", "maturity_date", "close_date", "interest_rate", "term")
COLLATERAL_WIRE = ("collateral_number", "cif", "type", "description", "value", "currency",
                   "valuation_date", "vehicle_make", "vehicle_model", "vehicle_year",
                   "license_plate", "chassis_number", "engine_number", "property_address",
                   "property_area_m2", "land_certificate_number")
LINK_WIRE = ("account_number", "collateral_number")
CONTACT_WIRE = {"phones": PHONE_WIRE, "addresses": ADDRESS_WIRE, "emails": EMAIL_WIRE}


class SeedSource:
    """The demo generator's portfolio, built in slices without a database."""

    def __init__(self, customers: int = 2000, products: int = 3000, *,
                 business_date: date | None = None, tz: str = DEFAULT_TZ, seed: int | None = None,
                 chunk_size: int = 20_000):
        self.customers = customers
        self.products = products
        self.tz = ZoneInfo(tz)
        self.seed = RANDOM_SEED if seed is None else seed
        self.business_date = business_date or clock.now().astimezone(self.tz).date()
        self.chunk_size = chunk_size

    def _context(self, seed: int, counters: dict[str, int] | None = None):
        now = datetime.combine(self.business_date, time(20, 0), tzinfo=self.tz).astimezone(UTC)
        ctx = SeedContext(bulk=_Ids(), tz=self.tz, now=now, rng=FastRandom(seed),
                          pools=_pools(self.seed))
        ctx.counters.update(counters or {})
        return ctx

    def records(self) -> Iterator[tuple[str, dict]]:
        generator = PortfolioGenerator(self._context(self.seed), self.customers, self.products)
        for start in range(0, self.customers, self.chunk_size):
            chunk = generator.generate(start, min(self.customers, start + self.chunk_size))
            yield from chunk_records(chunk)

    def table_rows(self, tables: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
        """Rows of the seed's tables (e.g. cards, loan_applications) as column dicts."""

        generator = PortfolioGenerator(self._context(self.seed), self.customers, self.products)
        for start in range(0, self.customers, self.chunk_size):
            chunk = generator.generate(start, min(self.customers, start + self.chunk_size))
            for table in tables:
                names = COLUMNS[table]
                for row in chunk.rows[table]:
                    yield table, dict(zip(names, row, strict=True))

    def new_records(self, day: int, count: int) -> Iterator[tuple[str, dict]]:
        """Customers (with loans, collaterals, references) that first appear on ``day``."""

        if count <= 0:
            return
        offset = NEW_RECORD_BASE + day * 10_000
        counters = {"loan": 90_000_000 + day * 100_000, "reference": 70_000_000 + day * 100_000,
                    "collateral": 900_000_000 + day * 100_000,
                    "mobile": 50_000_000 + day * 100_000}
        ctx = self._context(self.seed + day, counters)
        generator = PortfolioGenerator(ctx, offset + count, (offset + count) * 3 // 2)
        yield from chunk_records(generator.generate(offset, offset + count))


def chunk_records(chunk) -> Iterator[tuple[str, dict]]:
    """Wire records of one slice of the seed's portfolio (T24 rows only)."""

    def rows(table):
        names = COLUMNS[table]
        return [dict(zip(names, row, strict=True)) for row in chunk.rows[table]]

    contacts: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for kind in ("phones", "addresses", "emails"):
        for row in rows(kind):
            if row.get("source_system") != "T24":
                continue  # entered by the collection team: not T24's data
            owner = ("cif", row["cif"]) if row.get("cif") else ("ref_cif", row.get("ref_cif"))
            contacts[owner][kind].append({n: wire_value(n, row.get(n))
                                          for n in CONTACT_WIRE[kind]})

    for row in rows("customers"):
        record = {n: wire_value(n, row[n]) for n in CUSTOMER_WIRE}
        own = contacts.get(("cif", row["cif"]), {})
        record.update({kind: own.get(kind, []) for kind in CONTACT_WIRE})
        yield "customers", record
    for row in rows("reference_customers"):
        record = {n: wire_value(n, row.get(n)) for n in REFERENCE_WIRE}
        own = contacts.get(("ref_cif", row["ref_cif"]), {})
        record.update({kind: own.get(kind, []) for kind in CONTACT_WIRE})
        yield "reference_customers", record
    for row in rows("collaterals"):
        yield "collaterals", {n: wire_value(n, row[n]) for n in COLLATERAL_WIRE}
    for row in rows("loans"):
        if row["source_system"] == "T24":
            yield "loans", {n: wire_value(n, row[n]) for n in LOAN_WIRE}
    for row in rows("loan_collaterals"):
        yield "loan_collaterals", {n: wire_value(n, row[n]) for n in LINK_WIRE}


class DatabaseSource(SeedSource):
    """The T24 rows of a database (streamed with server-side cursors)."""

    QUERIES = {
        "customers": """
            SELECT {cols},
              (SELECT json_agg(json_build_object('type', p.type, 'number', p.number,
                 'is_primary', p.is_primary, 'is_verified', p.is_verified,
                 'do_not_contact', p.do_not_contact) ORDER BY p.id)
               FROM phones p WHERE p.cif = c.cif AND p.source_system = 'T24') AS phones,
              (SELECT json_agg(json_build_object('type', a.type, 'line1', a.line1,
                 'ward', a.ward, 'district', a.district, 'city', a.city,
                 'province', a.province, 'country', a.country, 'postal_code', a.postal_code,
                 'lat', a.lat::text, 'lon', a.lon::text, 'is_primary', a.is_primary,
                 'is_verified', a.is_verified) ORDER BY a.id)
               FROM addresses a WHERE a.cif = c.cif AND a.source_system = 'T24') AS addresses,
              (SELECT json_agg(json_build_object('type', e.type, 'address', e.address,
                 'is_primary', e.is_primary, 'is_verified', e.is_verified) ORDER BY e.id)
               FROM emails e WHERE e.cif = c.cif AND e.source_system = 'T24') AS emails
            FROM customers c WHERE c.source_system = 'T24' ORDER BY c.cif""",
        "reference_customers": """
            SELECT {cols},
              (SELECT json_agg(json_build_object('type', p.type, 'number', p.number,
                 'is_primary', p.is_primary, 'is_verified', p.is_verified,
                 'do_not_contact', p.do_not_contact) ORDER BY p.id)
               FROM phones p WHERE p.ref_cif = c.ref_cif AND p.source_system = 'T24') AS phones
            FROM reference_customers c WHERE c.source_system = 'T24' ORDER BY c.ref_cif""",
        "collaterals": "SELECT {cols} FROM collaterals c WHERE c.source_system = 'T24' "
                       "ORDER BY c.collateral_number",
        "loans": "SELECT {cols} FROM loans c WHERE c.source_system = 'T24' "
                 "ORDER BY c.account_number",
        "loan_collaterals": "SELECT {cols} FROM loan_collaterals c "
                            "WHERE c.source_system = 'T24' "
                            "ORDER BY c.account_number, c.collateral_number",
    }
    COLUMNS = {"customers": CUSTOMER_WIRE, "reference_customers": REFERENCE_WIRE,
               "collaterals": COLLATERAL_WIRE, "loans": LOAN_WIRE, "loan_collaterals": LINK_WIRE}

    def __init__(self, database_url: str, **kwargs):
        super().__init__(**kwargs)
        for prefix in ("postgresql+psycopg://", "postgres://"):
            if database_url.startswith(prefix):
                database_url = "postgresql://" + database_url[len(prefix):]
        self.database_url = database_url

    def records(self) -> Iterator[tuple[str, dict]]:
        with psycopg.connect(self.database_url) as conn:
            for entity in ENTITIES:
                names = self.COLUMNS[entity]
                query = self.QUERIES[entity].format(cols=", ".join(f"c.{n}" for n in names))
                with conn.cursor(name=f"t24_{entity}") as cur:
                    cur.itersize = 5000
                    cur.execute(query)
                    for row in cur:
                        record = _wire(names, row[:len(names)])
                        if entity == "customers":
                            for kind, value in zip(CONTACT_WIRE, row[len(names):], strict=True):
                                record[kind] = value or []
                        elif entity == "reference_customers":
                            record.update(phones=row[len(names)] or [], addresses=[],
                                          emails=[])
                        yield entity, record


# -- day by day changes --------------------------------------------------------------------------
def _money(value) -> Decimal:
    return Decimal(str(value or 0))


def _instalment(record: dict) -> Decimal:
    """A loan's monthly instalment: its minimum payment while late, else principal over the
    term plus a month's interest on what is outstanding (as the seed computes it)."""
    min_pay = _money(record.get("min_pay"))
    if min_pay > 0:
        return min_pay
    original, outstanding = _money(record.get("original_amount")), _money(record["outstanding"])
    term = int(record.get("term") or 12) or 12
    rate = _money(record.get("interest_rate"))
    value = original / term + outstanding * rate / 1200
    return max(Decimal(1000), (value / 1000).quantize(Decimal(1)) * 1000)


def _change(entity: str, record: dict, day: date, h: int) -> bool:
    """Apply one day's change to a record in place; False if nothing changed. A loan stays
    consistent (portal/cases/account_checks.py): current, it owes nothing now and its next
    instalment is ahead; late, it owes at least its minimum and its next instalment falls after
    the oldest unpaid one."""
    if entity == "loans":
        if record["status"] == "CLOSED":
            return False
        dpd = int(record["dpd"])
        outstanding, due = _money(record["outstanding"]), _money(record["due_amount"])
        kind = (h >> 24) % 20
        if kind == 19:  # paid off
            record.update(status="CLOSED", outstanding="0", due_amount="0", min_pay="0",
                          dpd=0, next_payment_date=None, close_date=day.isoformat())
        elif kind < 9 and dpd > 0:  # paid what was due: cured
            record.update(dpd=0, due_amount="0", min_pay="0",
                          outstanding=str(max(Decimal(0), outstanding - due)),
                          next_payment_date=(day + timedelta(days=30)).isoformat())
        else:  # missed a payment: rolls forward
            instalment = _instalment(record)
            new_dpd = dpd + 30 if dpd else 1 + h % 5
            new_outstanding = outstanding + (instalment / 50).quantize(Decimal(1))
            new_due = min(due + instalment, new_outstanding)
            record.update(dpd=new_dpd, outstanding=str(new_outstanding), due_amount=str(new_due),
                          min_pay=str(min(instalment, new_due)),
                          next_payment_date=next_instalment(day, new_dpd).isoformat())
        return True
    if entity == "customers":
        kind = (h >> 24) % 3
        if kind == 0 or not record.get("phones"):
            record["segment"] = ("MASS", "AFFLUENT", "PRIORITY", "SME")[h % 4]
        elif kind == 1:
            phones = [dict(p) for p in record["phones"]]
            phones[0]["number"] = f"09{h % 10**8:08d}"
            phones[0]["is_verified"] = False
            record["phones"] = phones
        else:
            addresses = [dict(a) for a in record.get("addresses") or []]
            if not addresses:
                record["segment"] = "MASS"
                return True
            addresses[0]["line1"] = f"{h % 400 + 1} Đường số {h % 30 + 1}"
            record["addresses"] = addresses
        return True
    if entity == "collaterals":
        value = _money(record["value"])
        factor = Decimal(90 + h % 21) / 100
        record.update(value=str((value * factor / 1_000_000).quantize(Decimal(1)) * 1_000_000),
                      valuation_date=day.isoformat())
        return True
    if entity == "reference_customers" and record.get("phones"):
        phones = [dict(p) for p in record["phones"]]
        phones[0]["number"] = f"03{h % 10**8:08d}"
        record["phones"] = phones
        return True
    return False


def evolve(entity: str, record: dict, base_date: date, first_day: int, last_day: int,
           rate: float) -> tuple[dict, bool]:
    """The record as of ``last_day`` (changes of days first_day..last_day applied) and whether
    it changed on ``last_day`` itself."""
    factor = CHANGE_FACTORS.get(entity, 0.0)
    scheduled = entity == "loans"  # a current loan's instalment falls due as days pass
    if (factor == 0 or rate <= 0) and not scheduled or last_day < first_day:
        return record, False
    key = record_key(entity, record)
    threshold = rate * factor * 1_000_000
    copied = changed_last = False
    for day in range(first_day, last_day + 1):
        h = _hash(entity, key, day)
        changed = False
        if h % 1_000_000 < threshold:
            if not copied:
                record, copied = dict(record), True
            changed = _change(entity, record, base_date + timedelta(days=day), h)
        if scheduled and _instalment_passed(record, base_date + timedelta(days=day)):
            if not copied:
                record, copied = dict(record), True
            changed = _paid_on_schedule(record, base_date + timedelta(days=day)) or changed
        if day == last_day:
            changed_last = changed
    return record, changed_last


def _instalment_passed(record: dict, day: date) -> bool:
    """A current loan whose next payment date is before ``day`` (ISO dates compare as text)."""
    next_date = record.get("next_payment_date")
    return (record["status"] != "CLOSED" and not int(record["dpd"] or 0)
            and bool(next_date) and next_date < day.isoformat())


def _paid_on_schedule(record: dict, day: date) -> bool:
    """A current loan whose instalment fell due before ``day`` was paid on time (a loan that was
    not paid rolls forward in ``_change``): its next payment date moves on by whole months of
    30 days, to ``day`` or later."""
    next_date = date.fromisoformat(record["next_payment_date"])
    cycles = -(-(day - next_date).days // 30)
    record["next_payment_date"] = (next_date + timedelta(days=30 * cycles)).isoformat()
    return True


# -- writers -------------------------------------------------------------------------------------
def _xml_scalar(name: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def xml_record(entity: str, record: Mapping) -> str:
    parts = []
    for name, value in record.items():
        if name in LIST_FIELDS:
            item = LIST_FIELDS[name]
            inner = "".join(f"<{item}>" + "".join(_xml_scalar(k, v) for k, v in entry.items())
                            + f"</{item}>" for entry in value or [])
            parts.append(f"<{name}>{inner}</{name}>" if inner else f"<{name}/>")
        else:
            parts.append(_xml_scalar(name, value))
    tag = RECORD_ELEMENTS[entity]
    return f"  <{tag}>{''.join(parts)}</{tag}>\n"


class FileWriter:
    """Writes one entity's file (to ``name.part``, renamed on close), counting records and
    hashing and summing as it goes."""

    def __init__(self, directory: Path, entity: str, business_date: date, fmt: str,
                 xml_doctype: bool = False):
        self.entity = entity
        self.fmt = fmt
        self.name = data_file_name(entity, business_date, fmt)
        self.path = directory / self.name
        self.tmp = directory / (self.name + ".part")
        self.fp = self.tmp.open("wb")
        self.digest = hashlib.sha256()
        self.size = 0
        self.records = 0
        self.totals = {f: Decimal(0) for f in CONTROL_TOTAL_FIELDS.get(entity, ())}
        self.xml_doctype = xml_doctype and fmt == "xml"
        if fmt == "json":
            self._write("[")
        elif fmt == "xml":
            header = '<?xml version="1.0" encoding="UTF-8"?>\n'
            if xml_doctype:  # fault knob: an external entity, which the reader must refuse
                header += (f'<!DOCTYPE {XML_ROOT} [<!ENTITY xxe SYSTEM '
                           f'"file:///etc/passwd">]>\n')
            self._write(header + f"<{XML_ROOT} entity={quoteattr(entity)} "
                                 f"businessDate={quoteattr(business_date.isoformat())}>\n")

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.fp.write(data)
        self.digest.update(data)
        self.size += len(data)

    def write(self, record: Mapping, *, raw: str | None = None,
              totals_from: Mapping | None = None) -> None:
        """Write a record (or ``raw`` text in its place); control totals are taken from
        ``totals_from`` (what T24 meant) when given."""
        for name in self.totals:
            self.totals[name] += _money((totals_from or record).get(name))
        if self.fmt == "jsonl":
            text = raw if raw is not None else json.dumps(record, ensure_ascii=False)
            self._write(text + "\n")
        elif self.fmt == "json":
            text = raw if raw is not None else json.dumps(record, ensure_ascii=False)
            self._write(("\n" if self.records == 0 else ",\n") + text)
        else:
            text = raw if raw is not None else xml_record(self.entity, record)
            if self.xml_doctype and self.records == 0:
                tag = RECORD_ELEMENTS[self.entity]
                text = f"  <{tag}><note>&xxe;</note></{tag}>\n" + text
            self._write(text)
        self.records += 1

    def close(self) -> FileEntry:
        if self.fmt == "json":
            self._write("\n]\n")
        elif self.fmt == "xml":
            self._write(f"</{XML_ROOT}>\n")
        self.fp.close()
        os.replace(self.tmp, self.path)
        return FileEntry(entity=self.entity, name=self.name, records=self.records,
                         sha256=self.digest.hexdigest(), format=self.fmt, bytes=self.size,
                         control_totals=dict(self.totals))


# -- faults --------------------------------------------------------------------------------------
@dataclass
class T24Faults:
    """What to break in a generated set (entity names as in ENTITIES)."""

    malformed_every: int = 0  # every Nth record of each data file is malformed (0: none)
    malformed_entities: tuple[str, ...] = ENTITIES
    wrong_count: tuple[str, ...] = ()  # manifest record count off by one
    bad_checksum: tuple[str, ...] = ()  # manifest sha256 does not match the file
    half_written: tuple[str, ...] = ()  # file cut in half after the manifest was made
    missing: tuple[str, ...] = ()  # listed in the manifest, but not delivered
    xml_external_entity: tuple[str, ...] = ()  # XML file declares an external entity
    malformed_keys: list[str] = field(default_factory=list)  # filled in: what was broken


_MALFORMED_KINDS = ("syntax", "missing_field", "bad_amount", "bad_date")


def _malform(entity: str, record: dict, n: int, fmt: str) -> tuple[dict | None, str | None]:
    """A broken copy of a record: (record, None) or (None, raw text) for a syntax error."""
    kinds = _MALFORMED_KINDS if fmt == "jsonl" else _MALFORMED_KINDS[1:]
    kind = kinds[n % len(kinds)]
    if kind == "syntax":
        return None, json.dumps(record, ensure_ascii=False)[:-1] + ',"oops": }'
    broken = dict(record)
    if kind == "missing_field" or entity == "loan_collaterals":
        broken.pop(NATURAL_KEYS[entity][-1] if entity == "loan_collaterals" else
                   {"customers": "name", "reference_customers": "relationship_type",
                    "collaterals": "value", "loans": "outstanding"}[entity], None)
    elif kind == "bad_amount" and entity in ("loans", "collaterals"):
        broken["outstanding" if entity == "loans" else "value"] = "12,5x"
    else:
        field_name = {"customers": "date_of_birth", "reference_customers": "date_of_birth",
                      "collaterals": "valuation_date", "loans": "next_payment_date"}[entity]
        broken[field_name] = "2026-13-45"
    return broken, None


# -- the generator -------------------------------------------------------------------------------
def generate_day(out_dir: str | Path, source: SeedSource, *, day: int = 0, mode: str = "full",
                 fmt: str | Mapping[str, str] = "jsonl", base_date: date | None = None,
                 change_rate: float = 0.05, new_customers: int = 0,
                 full_omit_rate: float = 0.0, faults: T24Faults | None = None,
                 entities: tuple[str, ...] = ENTITIES,
                 generated_at: datetime | None = None, profile: str = "crm-json") -> Path:
    """Write the file set of day ``day`` into ``out_dir``; returns the manifest's path (written
    last). ``fmt`` is one format for every file or a format per entity. The manifest is stamped
    ``generated_at`` (default: now on the product clock, to the second). ``profile``:
    ``crm-json`` (our own records, ``fmt``) or ``t24-dfe`` (T24 Data Framework CSV extracts,
    integrations/sandbox/t24_dfe.py; ``fmt``, ``entities`` and the malformed-record knob do
    not apply, the manifest faults name its sources)."""
    if mode not in ("full", "delta"):
        raise ValueError("mode must be 'full' or 'delta'")
    if mode == "delta" and day == 0:
        raise ValueError("day 0 is the starting point: it can only be a full set")
    faults = faults or T24Faults()
    base_date = base_date or source.business_date
    business_date = base_date + timedelta(days=day)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if profile not in SHIPPED:
        raise ValueError(f"profile must be one of {', '.join(SHIPPED)}")
    dfe = DfeWriter(out, business_date, load_profile(profile)) if profile == "t24-dfe" else None
    formats = {e: (fmt if isinstance(fmt, str) else fmt.get(e, "jsonl")) for e in entities}
    writers = {} if dfe else {
        e: FileWriter(out, e, business_date, formats[e],
                      xml_doctype=e in faults.xml_external_entity and formats[e] == "xml")
        for e in entities}
    malformed_seen: dict[str, int] = defaultdict(int)

    def emit(entity: str, record: dict) -> None:
        if dfe is not None:
            dfe.emit(entity, record)
            return
        writer = writers.get(entity)
        if writer is None:
            return
        n = writer.records + 1
        if (faults.malformed_every and entity in faults.malformed_entities
                and n % faults.malformed_every == 0):
            broken, raw = _malform(entity, record, malformed_seen[entity], writer.fmt)
            malformed_seen[entity] += 1
            faults.malformed_keys.append(f"{entity}:{record_key(entity, record)}")
            writer.write(broken or {}, raw=raw, totals_from=record)
        else:
            writer.write(record)

    def stream(records, first_day: int) -> None:
        for entity, record in records:
            if (mode == "full" and day > 0 and entity == "loans"
                    and _chance(full_omit_rate, "omit", record["account_number"])):
                continue  # vanished from T24's full extract: the loader must close it
            state, changed_today = evolve(entity, record, base_date, first_day, day,
                                          change_rate)
            if mode == "full" or changed_today:
                emit(entity, state)

    try:
        if mode == "full":
            stream(source.records(), 1)
            for d in range(1, day + 1):
                stream(source.new_records(d, new_customers), d + 1)
        else:
            stream(source.records(), 1)
            for d in range(1, day):
                stream(source.new_records(d, new_customers), d + 1)
            # New today: all of them belong in today's delta.
            for entity, record in source.new_records(day, new_customers):
                emit(entity, record)
        entries = dfe.close() if dfe else [writers[e].close() for e in entities]
    except BaseException:
        for writer in writers.values():
            writer.fp.close()
            writer.tmp.unlink(missing_ok=True)
        if dfe is not None:
            dfe.discard()
        raise

    for entry in entries:
        path = out / entry.name
        if entry.entity in faults.wrong_count:
            entry.records += 1
        if entry.entity in faults.bad_checksum:
            entry.sha256 = hashlib.sha256(entry.sha256.encode()).hexdigest()
        if entry.entity in faults.half_written:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        if entry.entity in faults.missing:
            path.unlink()
    manifest = Manifest(business_date=business_date, mode=mode, files=entries,
                        generated_at=(generated_at or clock.running_now()).replace(microsecond=0))
    return manifest.write(out / manifest_name(business_date))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m integrations.sandbox.t24_files",
        description="Write a T24 file set (one business date) into a directory.")
    parser.add_argument("--out", required=True, help="directory to write into (the inbox)")
    parser.add_argument("--day", type=int, default=0, help="days after the base date")
    parser.add_argument("--mode", choices=("full", "delta"), default="full")
    parser.add_argument("--format", dest="fmt", choices=("jsonl", "json", "xml"),
                        default="jsonl", help="crm-json: the files' format")
    parser.add_argument("--profile", choices=SHIPPED, default="crm-json",
                        help="crm-json: our own records; t24-dfe: T24 Data Framework CSV "
                             "extracts with multi-values (integrations/t24/mappings/)")
    parser.add_argument("--base-date", type=date.fromisoformat,
                        help="business date of day 0 (default: today, bank time)")
    parser.add_argument("--source", choices=("seed", "db"), default="seed")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--products", type=int, default=3000)
    parser.add_argument("--change-rate", type=float, default=0.05)
    parser.add_argument("--new-customers", type=int, default=0)
    parser.add_argument("--full-omit-rate", type=float, default=0.0)
    parser.add_argument("--malformed-every", type=int, default=0)
    parser.add_argument("--wrong-count", nargs="*", default=(), metavar="SOURCE",
                        help="files (entities; t24-dfe: its sources) whose manifest count is off")
    parser.add_argument("--bad-checksum", nargs="*", default=(), metavar="SOURCE")
    parser.add_argument("--half-written", nargs="*", default=(), metavar="SOURCE")
    args = parser.parse_args(argv)
    tz = os.environ.get("BANK_TIMEZONE", DEFAULT_TZ)
    if args.source == "db":
        if not args.database_url:
            parser.error("--source db needs --database-url or DATABASE_URL")
        source = DatabaseSource(args.database_url, business_date=args.base_date, tz=tz)
    else:
        source = SeedSource(args.customers, args.products, business_date=args.base_date, tz=tz)
    faults = T24Faults(malformed_every=args.malformed_every, wrong_count=tuple(args.wrong_count),
                       bad_checksum=tuple(args.bad_checksum),
                       half_written=tuple(args.half_written))
    path = generate_day(args.out, source, day=args.day, mode=args.mode, fmt=args.fmt,
                        change_rate=args.change_rate, new_customers=args.new_customers,
                        full_omit_rate=args.full_omit_rate, faults=faults,
                        profile=args.profile)
    manifest = Manifest.load(path)
    for entry in manifest.files:
        print(f"{entry.name:<45} {entry.records:>9,} records")
    print(f"{path.name} ({manifest.mode})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["DatabaseSource", "FileWriter", "SeedSource", "T24Faults", "evolve", "generate_day"]
