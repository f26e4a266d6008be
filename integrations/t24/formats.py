"""The T24 file set of one business date: entities, file names and formats (docs/integrations.md).

A business date's set is one file per entity plus a manifest, all in one directory::

    t24_customers_20261124.jsonl
    t24_reference_customers_20261124.jsonl
    t24_loans_20261124.xml
    t24_collaterals_20261124.json
    t24_loan_collaterals_20261124.jsonl
    t24_manifest_20261124.json        <- written last: its presence means the set is complete

The extension chooses the format: ``.jsonl`` (JSON Lines, one record per line), ``.json`` (one
JSON array of records, read incrementally), ``.xml`` (``<T24Export>`` with one child element
per record) or ``.csv`` (T24 Data Framework extracts). Which files a set holds, and what their
records look like, is the mapping profile's (integrations/t24/mapping.py): ``crm-json`` has one
file per entity below; another profile names its own sources (``t24_aa_arrangements_…csv``).
"""

from __future__ import annotations

import re
from datetime import date

SYSTEM = "T24"
MANIFEST_VERSION = 1

# Entities in load order (a record only references entities before it).
ENTITIES = ("customers", "reference_customers", "collaterals", "loans", "loan_collaterals")

# The XML element of one record of each entity.
RECORD_ELEMENTS = {
    "customers": "customer",
    "reference_customers": "reference_customer",
    "collaterals": "collateral",
    "loans": "loan",
    "loan_collaterals": "loan_collateral",
}
XML_ROOT = "T24Export"
# Nested lists of a customer / reference customer: container element -> item element.
LIST_FIELDS = {"phones": "phone", "addresses": "address", "emails": "email"}

# The natural key of each entity, as named in its records.
NATURAL_KEYS = {
    "customers": ("cif",),
    "reference_customers": ("ref_cif",),
    "collaterals": ("collateral_number",),
    "loans": ("account_number",),
    "loan_collaterals": ("account_number", "collateral_number"),
}

# Amount fields summed into a file's control totals (exact Decimal sums, as strings).
CONTROL_TOTAL_FIELDS = {
    "loans": ("original_amount", "outstanding", "due_amount"),
    "collaterals": ("value",),
}

FORMATS = {".jsonl": "jsonl", ".json": "json", ".xml": "xml", ".csv": "csv"}
MODES = ("full", "delta")

_NAME = re.compile(r"t24_(?P<entity>[a-z_]+)_(?P<date>\d{8})\.(?P<ext>jsonl|json|xml|csv)")
_MANIFEST = re.compile(r"t24_manifest_(?P<date>\d{8})\.json")


class T24FormatError(ValueError):
    """A file that cannot be read as a whole (bad syntax, forbidden XML, wrong shape)."""

    def __init__(self, source: str, reason: str, line: int | None = None):
        self.source = source
        self.reason = reason
        self.line = line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # picklable (raised in the reader process, re-raised by the loader)
        return type(self), (self.source, self.reason, self.line)


def format_of(name: str) -> str:
    """'jsonl', 'json' or 'xml' from a file name's extension."""
    for ext, fmt in FORMATS.items():
        if name.lower().endswith(ext):
            return fmt
    raise T24FormatError(name, f"unknown file extension (expected one of {', '.join(FORMATS)})")


def data_file_name(entity: str, business_date: date, fmt: str,
                   sources: tuple[str, ...] = ENTITIES) -> str:
    if entity not in sources:
        raise ValueError(f"unknown T24 entity {entity!r}")
    if fmt not in FORMATS.values():
        raise ValueError(f"unknown T24 file format {fmt!r}")
    return f"t24_{entity}_{business_date:%Y%m%d}.{fmt}"


def manifest_name(business_date: date) -> str:
    return f"t24_manifest_{business_date:%Y%m%d}.json"


def parse_data_file_name(name: str, sources: tuple[str, ...] | None = None,
                         ) -> tuple[str, date, str] | None:
    """(entity, business date, format) of a data file name, or None if it is not one.
    ``sources``: the names a file may carry (a mapping profile's sources); None: any."""
    match = _NAME.fullmatch(name)
    if not match or match["entity"] == "manifest" or (
            sources is not None and match["entity"] not in sources):
        return None
    try:
        day = date(int(match["date"][:4]), int(match["date"][4:6]), int(match["date"][6:]))
    except ValueError:
        return None
    return match["entity"], day, match["ext"]


def parse_manifest_name(name: str) -> date | None:
    match = _MANIFEST.fullmatch(name)
    if not match:
        return None
    raw = match["date"]
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        return None
