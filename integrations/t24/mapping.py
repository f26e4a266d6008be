"""Mapping profiles: how a bank's T24 extract becomes our rows, declared in a versioned file.

A profile is a TOML file (``integrations/t24/mappings/<name>.toml``, or a bank's own file named
by ``T24_MAPPING_PROFILE``). TOML because it is in the standard library (``tomllib``), has
comments, and keeps one field's mapping on one line — so an error can name that line. It states
its own version and lists its **sources**, in load order: one file per source and business date
(``t24_<source>_<YYYYMMDD>.<ext>``, listed in the set's manifest), each either

- mapped to one of our entities (``entity = "loans"``): every target field says where it comes
  from (``from`` a T24 field, a ``const``, or a value ``derived`` from related records), which
  value / sub-value of a multi-value field, which converters and code table apply; contact
  groups turn multi-values (``SMS.1``, ``EMAIL.1``, ``STREET``…) into several phones, e-mails,
  addresses; or
- related records (``related_to = "aa_arrangements"``): bills or overdue schedules, read
  before the source they belong to and kept per arrangement as four figures (oldest overdue due
  date, overdue amount, next due date and amount), from which its DPD and amounts are derived
  relative to the set's business date. Memory: one small entry per arrangement with bills.

``native = true`` (the ``crm-json`` profile) means the product's own record shape
(integrations/t24/transform.py): no field mapping, the same code path as before profiles.

A profile is compiled once into plain per-field closures (:meth:`Profile.plan`); a record then
costs a dictionary lookup and a target converter per field. What the target fields accept (types,
lengths, choices, required) is still the entity's one definition, ``transform.ENTITY_FIELDS``.

Errors: a mapping file that cannot be used raises :class:`MappingError` naming the file, its line
and the field (the run is refused); a record whose value does not convert is quarantined with
the T24 field and our field in its reason (``SECTOR → segment: code '9999' is not in code
table sector_segment``), the file and the record's line beside it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from integrations.fields import Field, Invalid, Quarantine, Row, json_safe
from integrations.t24.formats import ENTITIES, NATURAL_KEYS
from integrations.t24.parser import (
    CsvDialect,
    RawRecord,
    count_csv,
    count_records,
    read_csv,
    read_records,
)
from integrations.t24.transform import (
    CONTACT_FIELDS,
    ENTITY_FIELDS,
    SOURCE,
    WITH_CONTACTS,
    check_rules,
    finish_contact,
    transform,
)
from portal.text import printable

MAPPINGS_DIR = Path(__file__).with_name("mappings")
SHIPPED = ("crm-json", "t24-dfe")
DEFAULT_PROFILE = "crm-json"
VALUE_MARK, SUBVALUE_MARK = chr(253), chr(252)  # jBASE's value and sub-value marks
SOURCE_NAME = re.compile(r"^[a-z][a-z_]*$")
FIELD_OPTIONS = {"from", "const", "value", "subvalue", "join", "where", "convert", "code",
                 "derived", "default"}
CONTACT_OPTIONS = {"table", "each", "type", "primary", "fields"}
SOURCE_OPTIONS = {"entity", "related_to", "application", "each", "fields", "contacts",
                  "native", "description"}
BILL_FIELDS = {"arrangement": True, "due_date": True, "outstanding": True, "unpaid": False}
ZERO = Decimal("0.00")


class MappingError(ValueError):
    """A mapping file that cannot be used: names the file, the line and the field."""

    def __init__(self, file: str, reason: str, line: int | None = None,
                 field_name: str | None = None):
        self.file, self.reason, self.line, self.field_name = file, reason, line, field_name
        where = f"mapping file {file}" + (f", line {line}" if line else "")
        what = f", field {field_name}" if field_name else ""
        super().__init__(f"{where}{what}: {reason}")

    def __reduce__(self):  # picklable (raised in the reader process, re-raised by the loader)
        return type(self), (self.file, self.reason, self.line, self.field_name)


# -- where in the file ---------------------------------------------------------------------------
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


class _Lines:
    """Finds the line of a table or key in the TOML text (tomllib keeps no positions)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    @staticmethod
    def _norm(name: str) -> str:
        return re.sub(r"[\s\"']", "", name)

    def of(self, table: str, key: str | None = None, occurrence: int = 0) -> int | None:
        wanted, seen, inside, found = self._norm(table), -1, False, None
        key_line = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=") if key else None
        for number, text in enumerate(self.lines, start=1):
            header = _HEADER.match(text)
            if header:
                inside = self._norm(header[1]) == wanted
                if inside:
                    seen += 1
                    if seen == occurrence:
                        found = number
                        if key_line is None:
                            return number
                continue
            if inside and seen == occurrence and key_line and key_line.match(text):
                return number
        return found


# -- converters (source side: what T24 writes -> what the target field accepts) ------------------
_DATES: dict[str, date] = {}  # T24 text -> date: a file repeats few distinct dates
_DATES_MAX = 1 << 16
_UNKNOWN = object()


class _Converted(dict):
    """Texts of one field converted so far -> their values, for fields whose texts repeat (a
    code, a date, a ward, a phone's type): each is converted once. Errors are not kept (their
    message names the record's position). Bounded: memory stays flat."""

    MAX = 1 << 16

    def keep(self, text: str, value):
        if len(self) >= self.MAX:
            self.clear()
        self[text] = value
        return value


def _t24_date(label: str, value):
    found = _DATES.get(value) if type(value) is str else None
    if found is not None:
        return found
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if len(text) == 8 and text.isdigit():
        try:
            found = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
        else:
            if type(value) is str:
                if len(_DATES) >= _DATES_MAX:  # bounded: memory stays flat
                    _DATES.clear()
                _DATES[value] = found
            return found
    raise Invalid(f"{label}: not a T24 date (YYYYMMDD): {value!r}")


def _amount(label: str, value):
    if isinstance(value, Decimal):
        return value
    text = str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise Invalid(f"{label}: not an amount: {value!r}") from None
    if not amount.is_finite():
        raise Invalid(f"{label}: not an amount: {value!r}")
    return amount


def _abs(label: str, value):
    return abs(_amount(label, value))


def _upper(label: str, value):
    return str(value).upper()


def _lower(label: str, value):
    return str(value).lower()


_TERM = re.compile(r"^(\d{1,5})([DWMY])$")


def _term_months(label: str, value):
    """A T24 term (``12M``, ``5Y``, ``360D``, ``26W``) in whole months."""
    match = _TERM.match(str(value).strip().upper())
    if not match:
        raise Invalid(f"{label}: not a T24 term (e.g. 12M, 5Y, 360D): {value!r}")
    number, unit = int(match[1]), match[2]
    return {"D": round(number / 30), "W": round(number * 7 / 30), "M": number,
            "Y": number * 12}[unit]


def _strip_prefix(prefix: str) -> Callable:
    def convert(label: str, value):
        text = str(value)
        return text[len(prefix):] if text.startswith(prefix) else text
    return convert


def _part(separator: str, index: str) -> Callable:
    position = int(index) - 1

    def convert(label: str, value):
        parts = str(value).split(separator)
        if position >= len(parts):
            raise Invalid(f"{label}: {value!r} has no part {position + 1} "
                          f"(separated by {separator!r})")
        return parts[position]
    return convert


CONVERTERS: dict[str, Callable] = {"date": _t24_date, "amount": _amount, "abs": _abs,
                                   "upper": _upper, "lower": _lower,
                                   "term_months": _term_months}
CONVERTER_FACTORIES: dict[str, tuple[int, Callable]] = {"strip_prefix": (1, _strip_prefix),
                                                        "part": (2, _part)}


# -- related records: bills per arrangement ------------------------------------------------------
class Bills:
    """Unpaid bills of each arrangement, as four figures (memory: one small list a key).
    Overdue: due before the business date; next: due on or after it."""

    def __init__(self, business_date: date):
        self.business_date = business_date
        self.by_key: dict[str, list] = {}

    def add(self, key: str, due: date, outstanding: Decimal, unpaid: bool) -> None:
        if not unpaid:
            return
        entry = self.by_key.get(key)
        if entry is None:  # oldest overdue, overdue sum, next due, next amount, unpaid bills
            entry = self.by_key[key] = [None, ZERO, None, ZERO, 0]
        entry[4] += 1
        if due < self.business_date:
            if entry[0] is None or due < entry[0]:
                entry[0] = due
            entry[1] += outstanding
        elif entry[2] is None or due < entry[2]:
            entry[2], entry[3] = due, outstanding
        elif due == entry[2]:
            entry[3] += outstanding

    def derived(self, name: str, key: str):
        return FIGURES[name](self.by_key.get(key), self.business_date)


# A derived value from an arrangement's entry in Bills (None: no unpaid bill) and the date.
FIGURES: dict[str, Callable[[list | None, date], object]] = {
    "days_past_due": lambda entry, today: (today - entry[0]).days if entry and entry[0] else 0,
    "overdue_amount": lambda entry, today: entry[1] if entry else ZERO,
    "next_due_date": lambda entry, today: entry[2] if entry else None,
    "next_due_amount": lambda entry, today: entry[3] if entry else ZERO,
    "unpaid_bills": lambda entry, today: entry[4] if entry else 0,
}
DERIVED = tuple(FIGURES)


@dataclass
class ReadContext:
    """What a set's reading shares between its files: the business date and the related
    records read so far (source name -> Bills)."""

    business_date: date
    bills: dict[str, Bills] = field(default_factory=dict)

    def bills_of(self, source: str) -> Bills:
        if source not in self.bills:
            self.bills[source] = Bills(self.business_date)
        return self.bills[source]


# -- the profile ---------------------------------------------------------------------------------
@dataclass
class Source:
    name: str
    entity: str | None  # our entity; None for related records
    related_to: str | None
    application: str
    spec: dict
    line: int | None


@dataclass
class Profile:
    name: str
    version: str
    file: str  # the mapping file's name (errors name it)
    native: bool
    dialect: CsvDialect
    value_mark: str
    subvalue_mark: str
    sources: dict[str, Source]
    code_tables: dict[str, dict]
    lines: _Lines = field(repr=False, default=None)

    def entity_of(self, source: str) -> str | None:
        return self.sources[source].entity

    def target(self, source: str) -> str:
        """The entity a source's rows go to; a related source's own name."""
        return self.sources[source].entity or source

    def related_of(self, source: str) -> str | None:
        return next((s.name for s in self.sources.values() if s.related_to == source), None)

    def last_source_of(self, entity: str) -> str | None:
        names = [s.name for s in self.sources.values() if s.entity == entity]
        return names[-1] if names else None

    def describe(self) -> dict:
        return {"profile": self.name, "version": self.version, "file": self.file}

    # -- reading -----------------------------------------------------------------------------
    def plan(self, source: str, context: ReadContext | None = None) -> Plan:
        return _compile(self, self.sources[source], context)

    def records(self, path: Path, source: str, plan: Plan | None = None) -> Iterator[RawRecord]:
        path = Path(path)
        if path.suffix.lower() == ".csv":
            columns = plan.columns if plan is not None else self.plan(source).columns
            return read_csv(path, source, self.dialect, columns, blank_as_none=False)
        return read_records(path, source)

    def count_records(self, path: Path, source: str) -> int:
        if self.native or Path(path).suffix.lower() != ".csv":
            return count_records(path, source)
        return count_csv(path, self.dialect)


@dataclass
class Plan:
    """A source compiled: ``transform(record)`` gives a Row / Quarantine (an entity's source)
    or None / Quarantine (related records, added to the context's Bills)."""

    source: str
    entity: str
    columns: tuple[str, ...]  # header fields a CSV file must have: the key's (others: blank)
    transform: Callable[[RawRecord], Row | Quarantine | None]


def _fail(profile_file: str, lines: _Lines, reason: str, table: str,
          key: str | None = None, occurrence: int = 0, field_name: str | None = None):
    raise MappingError(profile_file, reason, lines.of(table, key, occurrence),
                       field_name or key)


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``crm-json``, ``t24-dfe``) or a bank's mapping file by
    path; checked whole (MappingError if anything in it cannot be used)."""
    text_name = str(name_or_path)
    path = MAPPINGS_DIR / f"{text_name}.toml" if text_name in SHIPPED else Path(text_name)
    if not path.is_file():
        raise MappingError(path.name, f"no such mapping profile or file: {text_name!r} "
                                      f"(shipped: {', '.join(SHIPPED)}; or a path to a .toml "
                                      f"mapping file)")
    stat = path.stat()
    cache_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if cache_key not in _CACHE:
        _CACHE[cache_key] = _parse(path)
    return _CACHE[cache_key]


_CACHE: dict[tuple, Profile] = {}


def default_profile() -> Profile:
    return load_profile(DEFAULT_PROFILE)


def _parse(path: Path) -> Profile:
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(name, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise MappingError(name, f"not valid TOML: {exc}",
                           int(line[1]) if line else None) from None
    lines = _Lines(text)
    head = data.get("profile")
    if not isinstance(head, dict):
        raise MappingError(name, "no [profile] table (name, version)", 1)
    for key in ("name", "version"):
        if not isinstance(head.get(key), str | int) or not str(head.get(key)).strip():
            _fail(name, lines, f"[profile] needs a {key}", "profile", key)
    native = bool(head.get("native", False))
    marks = {}
    for key, default in (("value_mark", VALUE_MARK), ("subvalue_mark", SUBVALUE_MARK),
                         ("delimiter", ","), ("quote", '"')):
        value = head.get(key, default)
        if not isinstance(value, str) or len(value) != 1:
            _fail(name, lines, f"{key} must be one character, got {value!r}", "profile", key)
        marks[key] = value
    if len(set(marks.values())) != len(marks):
        _fail(name, lines, "value_mark, subvalue_mark, delimiter and quote must differ",
              "profile", "value_mark")
    encoding = head.get("encoding", "utf-8")
    try:
        "".encode(encoding)
    except (LookupError, TypeError):
        _fail(name, lines, f"unknown encoding {encoding!r}", "profile", "encoding")
    codes = data.get("code_tables", {})
    if not isinstance(codes, dict) or not all(isinstance(t, dict) for t in codes.values()):
        _fail(name, lines, "code_tables must hold tables of code = value", "code_tables")
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, dict) or not raw_sources:
        raise MappingError(name, "no [sources.<name>] tables", None, "sources")
    unknown = set(data) - {"profile", "code_tables", "sources"}
    if unknown:
        _fail(name, lines, f"unknown table(s): {', '.join(sorted(unknown))}",
              sorted(unknown)[0])
    profile = Profile(str(head["name"]), str(head["version"]), name, native,
                      CsvDialect(marks["delimiter"], marks["quote"], encoding),
                      marks["value_mark"], marks["subvalue_mark"], {}, codes, lines)
    last_order = -1
    for source_name, spec in raw_sources.items():
        table = f"sources.{source_name}"
        if not SOURCE_NAME.match(source_name) or source_name == "manifest" \
                or not isinstance(spec, dict):
            _fail(name, lines, "a source name is lower case letters and _ (it names the "
                               "file: t24_<source>_<YYYYMMDD>.<ext>)", table)
        extra = set(spec) - SOURCE_OPTIONS
        if extra:
            _fail(name, lines, f"unknown option(s) {', '.join(sorted(extra))}", table,
                  sorted(extra)[0])
        entity, related = spec.get("entity"), spec.get("related_to")
        if (entity is None) == (related is None):
            _fail(name, lines, "a source has either entity = <one of "
                               f"{', '.join(ENTITIES)}> or related_to = <a source>", table)
        if entity is not None:
            if entity not in ENTITIES:
                _fail(name, lines, f"unknown entity {entity!r} (one of {', '.join(ENTITIES)})",
                      table, "entity")
            order = ENTITIES.index(entity)
            if order < last_order:
                _fail(name, lines, f"{entity} must come before the entities that reference it "
                                   f"(load order: {', '.join(ENTITIES)})", table, "entity")
            last_order = order
        elif related in profile.sources or related not in raw_sources:
            _fail(name, lines, f"related_to {related!r} must name a source listed after this "
                               "one (related records are read first)", table, "related_to")
        profile.sources[source_name] = Source(source_name, entity, related,
                                              str(spec.get("application", source_name)),
                                              spec, lines.of(table))
    for source in profile.sources.values():
        if source.related_to and profile.sources[source.related_to].entity != "loans":
            _fail(name, lines, "bills relate to loans only", f"sources.{source.name}",
                  "related_to")
        _compile(profile, source, None)  # every mistake now, not at the first record
    return profile


# -- compiling -----------------------------------------------------------------------------------
class _Compiler:
    def __init__(self, profile: Profile, source: Source, context: ReadContext | None):
        self.profile, self.source, self.context = profile, source, context
        self.columns: dict[str, None] = {}  # every header field the mapping reads
        self.key_columns: dict[str, None] = {}  # those a file must have (the others: blank)
        self.vm, self.sm = profile.value_mark, profile.subvalue_mark

    def fail(self, reason: str, table: str, key: str | None = None, occurrence: int = 0):
        _fail(self.profile.file, self.profile.lines, reason, table, key, occurrence)

    def getter(self, target: str, spec, table: str, occurrence: int = 0,
               grouped: bool = False) -> tuple[str, Callable]:
        """(label, get(data, position) -> value or None) of one field's spec; ``default``:
        the value when the field is blank or not in the file."""
        label, get = self._getter(target, spec, table, occurrence, grouped)
        if not isinstance(spec, dict) or spec.get("default") is None:
            return label, get
        default = spec["default"]

        def or_default(data: Mapping, position: int):
            value = get(data, position)
            return default if value is None else value
        return label, or_default

    def _getter(self, target: str, spec, table: str, occurrence: int,
                grouped: bool) -> tuple[str, Callable]:
        if isinstance(spec, str):
            spec = {"from": spec}
        if not isinstance(spec, dict):
            self.fail("a field is \"T24.FIELD\" or { from = …, … }", table, target, occurrence)
        extra = set(spec) - FIELD_OPTIONS
        if extra:
            self.fail(f"unknown option(s) {', '.join(sorted(extra))} (known: "
                      f"{', '.join(sorted(FIELD_OPTIONS))})", table, target, occurrence)
        if "derived" in spec:
            return self._derived(target, spec["derived"], table, occurrence)
        if "const" in spec:
            constant = spec["const"]
            return f"{target} (constant)", lambda data, position: constant
        names = spec.get("from")
        names = [names] if isinstance(names, str) else names
        if not names or not all(isinstance(n, str) and n for n in names):
            self.fail("needs from = \"T24.FIELD\" (or a list: the first one not blank), const "
                      "or derived", table, target, occurrence)
        for n in names:
            self.columns[n] = None
        if self.reading_key:
            self.key_columns.update(dict.fromkeys(names))
        label = f"{names[0]} → {target}"
        fixed = spec.get("value")
        if fixed is not None and fixed != "all" and not (isinstance(fixed, int) and fixed >= 1):
            self.fail("value is a position from 1, or \"all\"", table, target, occurrence)
        sub = spec.get("subvalue")
        if sub is not None and sub not in ("sum", "join") and not (
                isinstance(sub, int) and sub >= 1):
            self.fail("subvalue is a position from 1, \"sum\" or \"join\"", table, target,
                      occurrence)
        joiner = spec.get("join", " ")
        where = spec.get("where")
        if where is not None:
            if not (isinstance(where, dict) and len(where) == 1):
                self.fail("where is { T24.FIELD = \"value\" } (one field)", table, target,
                          occurrence)
            (where_field, where_value), = where.items()
            self.columns[where_field] = None
        steps = self._steps(spec, table, target, occurrence)
        vm, sm = self.vm, self.sm

        def get(data: Mapping, position: int):
            text = None
            for n in names:
                text = data.get(n)
                if text is not None and (type(text) is not str or text.strip()):
                    break
                text = None
            if text is None:
                return None
            if type(text) is not str:  # JSON: a list is the field's values
                text = vm.join("" if v is None else str(v) for v in text) \
                    if isinstance(text, list) else str(text)
            index = position if fixed is None else (fixed - 1 if fixed != "all" else None)
            if where is not None:
                keys = data.get(where_field) or ""
                keys = [str(k) for k in keys] if isinstance(keys, list) else str(keys).split(vm)
                if where_value not in keys:
                    return None
                index = keys.index(where_value)
            if vm in text:
                values = text.split(vm)
                if index is None:
                    text = joiner.join(v.replace(sm, joiner) for v in values if v.strip())
                elif index < len(values):
                    text = values[index]
                else:
                    return None
            elif index and fixed is not None:  # a single value: there is no value 2
                return None
            if sm in text or sub is not None:
                parts = text.split(sm)
                if sub == "sum":
                    total = ZERO
                    for part in parts:
                        if part.strip():
                            total += _amount(label, part)
                    text = total
                elif isinstance(sub, int):
                    text = parts[sub - 1] if sub - 1 < len(parts) else None
                else:
                    text = joiner.join(p for p in parts if p.strip())
            if text is None or (type(text) is str and not text.strip()):
                return None
            for step in steps:
                text = step(label, text)
            return text

        if isinstance(fixed, int) and where is None and sub is None and len(names) == 1:
            name, index = names[0], fixed - 1

            # one value of a multi-value field (``value = 1``), without sub-values: split once;
            # anything else takes ``get``
            def value_at(data: Mapping, position: int):
                text = data.get(name)
                if type(text) is not str or sm in text:
                    return None if text is None else get(data, position)
                if vm in text:
                    values = text.split(vm)
                    if index >= len(values):
                        return None
                    text = values[index]
                elif index:  # a single value: there is no value 2
                    return None
                if not text.strip():
                    return None
                for step in steps:
                    text = step(label, text)
                return text
            return label, value_at
        if fixed is None and where is not None and sub is None and len(names) == 1:
            name = names[0]

            # the value beside the one ``where`` names (LEGAL.ID by LEGAL.DOC.NAME), without
            # sub-values: anything else takes ``get``
            def where_at(data: Mapping, position: int):
                text, keys = data.get(name), data.get(where_field)
                if type(text) is not str or sm in text or type(keys) is not str:
                    return None if text is None else get(data, position)
                keys = keys.split(vm)
                if where_value not in keys:
                    return None
                if vm in text:
                    values = text.split(vm)
                    index = keys.index(where_value)
                    if index >= len(values):
                        return None
                    text = values[index]
                if not text.strip():
                    return None
                for step in steps:
                    text = step(label, text)
                return text
            return label, where_at
        if fixed is None and where is None and sub is None and len(names) == 1:
            name = names[0]

            # the common case, compiled apart: one field's value at a group's position (a
            # single value is every position's), without sub-values; anything else takes ``get``
            def plain(data: Mapping, position: int):
                text = data.get(name)
                if type(text) is not str or sm in text:
                    return None if text is None else get(data, position)
                if vm in text:
                    values = text.split(vm)
                    if position >= len(values):
                        return None
                    text = values[position]
                if not text.strip():
                    return None
                for step in steps:
                    text = step(label, text)
                return text
            return label, plain
        return label, get

    def _steps(self, spec: dict, table: str, target: str, occurrence: int) -> list[Callable]:
        """A field's converters, then its code table's lookup."""
        steps = self._converters(spec.get("convert"), table, target, occurrence)
        code = spec.get("code")
        if code is not None:
            codes = self.profile.code_tables.get(code)
            if codes is None:
                self.fail(f"no code table {code!r} (code_tables: "
                          f"{', '.join(self.profile.code_tables) or 'none'})", table, target,
                          occurrence)
            steps.append(_code_step(code, {str(k): v for k, v in codes.items()}))
        return steps

    def reader(self, target: Field, spec, table: str) -> tuple[str, Callable[[Mapping], object]]:
        """(label, read(data) -> the target field's value) of an entity's field: the getter and
        the field's own conversion in one call, with its required and default (Invalid when
        the value does not do). A field that reads one T24 field's single value through at most
        one converter — most of them — is read without the getter's call."""
        label, get = self.getter(target.name, spec, table)
        convert, required, default = target.convert, target.required, target.default

        def finish(value):
            if value is None or (type(value) is str and not value.strip()):
                if required:
                    raise Invalid(f"{label}: required")
                return default
            return convert(label, value)

        spec = {"from": spec} if isinstance(spec, str) else spec
        names = spec.get("from")
        if set(spec) - {"from", "convert", "code"} or not isinstance(names, str):
            return label, lambda data: finish(get(data, 0))
        steps = self._steps(spec, table, target.name, 0)
        if len(steps) > 1:
            return label, lambda data: finish(get(data, 0))
        vm, sm = self.vm, self.sm
        if not steps:
            def read(data: Mapping):
                text = data.get(names)
                if type(text) is str and vm not in text and sm not in text and text.strip():
                    return convert(label, text)
                return finish(get(data, 0))  # blank, several values or not text: the getter's
            return label, read
        step = steps[0]
        if spec.get("code") is None and spec.get("convert") != "date":
            def read_step(data: Mapping):
                text = data.get(names)
                if type(text) is str and vm not in text and sm not in text and text.strip():
                    return finish(step(label, text))
                return finish(get(data, 0))
            return label, read_step
        known = _Converted()  # a code or a date: few distinct texts

        def read_known(data: Mapping):
            text = data.get(names)
            if type(text) is str:
                value = known.get(text, _UNKNOWN)
                if value is not _UNKNOWN:
                    return value
                if vm not in text and sm not in text and text.strip():
                    return known.keep(text, finish(step(label, text)))
            return finish(get(data, 0))
        return label, read_known

    def _converters(self, names, table: str, target: str, occurrence: int) -> list[Callable]:
        if names is None:
            return []
        names = [names] if isinstance(names, str) else names
        steps = []
        for item in names:
            if not isinstance(item, str):
                self.fail(f"convert names a converter, got {item!r}", table, target, occurrence)
            head, *args = item.split(":")
            if head in CONVERTERS and not args:
                steps.append(CONVERTERS[head])
            elif head in CONVERTER_FACTORIES and len(args) == CONVERTER_FACTORIES[head][0]:
                try:
                    steps.append(CONVERTER_FACTORIES[head][1](*args))
                except ValueError:
                    self.fail(f"bad arguments of converter {item!r}", table, target, occurrence)
            else:
                known = [*CONVERTERS, "strip_prefix:<text>", "part:<separator>:<n>"]
                self.fail(f"unknown converter {item!r} (known: {', '.join(known)})", table,
                          target, occurrence)
        return steps

    def _derived(self, target: str, name, table: str, occurrence: int):
        if name not in DERIVED:
            self.fail(f"unknown derived value {name!r} (known: {', '.join(DERIVED)})", table,
                      target, occurrence)
        related = self.profile.related_of(self.source.name)
        if related is None:
            self.fail(f"derived {name!r} needs a source with related_to = "
                      f"{self.source.name!r} (its bills)", table, target, occurrence)
        context = self.context
        bills = context.bills_of(related) if context is not None else Bills(date.min)
        key_get, entry_of, figure = self.key_getter, bills.by_key.get, FIGURES[name]
        business_date = bills.business_date
        return f"{name} of {related} → {target}", \
            lambda data, position: figure(entry_of(key_get(data)), business_date)

    key_getter: Callable = None
    reading_key = False  # compiling the natural key's fields: their columns must be there


def _once_per_record(compute: Callable[[Mapping], object]) -> Callable[[Mapping], object]:
    """``compute(data)``, computed once per record however many fields ask for it: each record
    is a new mapping, so the last one is known by identity (and held, so its id is not
    reused)."""
    last_data, last_value = None, None

    def cached(data: Mapping):
        nonlocal last_data, last_value
        if data is not last_data:
            last_value = compute(data)
            last_data = data
        return last_value
    return cached


def _blank_as_none(data: Mapping) -> dict:
    """A record as quarantine keeps it: blank text is no value (CSV records are read with
    blanks as they are: every getter takes them as no value)."""
    return {k: None if type(v) is str and not v.strip() else v for k, v in data.items()}


def _code_step(name: str, codes: dict) -> Callable:
    def lookup(label: str, value):
        try:
            return codes[value if type(value) is str else str(value)]
        except KeyError:
            raise Invalid(f"{label}: code {value!r} is not in code table {name}") from None
    return lookup


def _compile(profile: Profile, source: Source, context: ReadContext | None) -> Plan:
    if profile.native or source.spec.get("native"):
        if source.entity is None:
            raise MappingError(profile.file, "a native source maps an entity", source.line,
                               source.name)
        return Plan(source.name, source.entity, (), transform)
    compiler = _Compiler(profile, source, context)
    table = f"sources.{source.name}.fields"
    fields = source.spec.get("fields")
    if not isinstance(fields, dict) or not fields:
        _fail(profile.file, profile.lines, "no fields", f"sources.{source.name}")
    if source.entity is None:
        return _compile_related(profile, source, compiler, fields, table)
    entity = source.entity
    targets = {f.name: f for f in ENTITY_FIELDS[entity]}
    for target in fields:
        if target not in targets:
            compiler.fail(f"{entity} has no field {target!r} (fields: {', '.join(targets)})",
                          table, target)
    keys = NATURAL_KEYS[entity]
    for key in keys:
        if key not in fields:
            compiler.fail(f"the key {key!r} of {entity} is not mapped", table)
    compiler.reading_key = True
    key_gets = [compiler.getter(k, fields[k], table)[1] for k in keys]
    compiler.reading_key = False

    def key_of(data: Mapping) -> str | None:
        try:
            parts = [g(data, 0) for g in key_gets]
        except Invalid:
            return None
        if any(p is None or not str(p).strip() for p in parts):
            return None
        return printable("|".join(str(p).strip() for p in parts))[:64]

    if len(key_gets) == 1:  # derived fields look their bills up by the plain key
        first_key = key_gets[0]
        compiler.key_getter = _once_per_record(lambda data: (first_key(data, 0) or "").strip())
    else:
        compiler.key_getter = _once_per_record(lambda data: key_of(data) or "")
    plan: list[tuple[str, str, Callable | None, Field]] = []
    for spec_field in ENTITY_FIELDS[entity]:
        if spec_field.name in fields:
            label, read = compiler.reader(spec_field, fields[spec_field.name], table)
            plan.append((spec_field.name, label, read, spec_field))
        elif spec_field.required:
            compiler.fail(f"{entity}.{spec_field.name} is required and not mapped", table)
        else:
            plan.append((spec_field.name, spec_field.name, None, spec_field))
    groups = _compile_contacts(profile, source, compiler)
    owner_field = WITH_CONTACTS.get(entity)
    vm = profile.value_mark
    if groups and owner_field is None:
        compiler.fail(f"{entity} have no contacts", f"sources.{source.name}", "contacts")

    # per record: start from every field's default (in the entity's field order, which the
    # row keeps), then convert the mapped ones; unmapped fields cost nothing
    defaults = {name: spec.default for name, _label, _read, spec in plan}
    mapped = [(name, read) for name, _label, read, _spec in plan if read is not None]
    single_key = keys[0] if len(keys) == 1 else None

    def run(record: RawRecord) -> Row | Quarantine:
        data = record.data
        if data is None:
            return Quarantine(entity, record.error or "undecodable record", None, None,
                              record.raw, record.source, record.line, record.number)
        try:
            values = defaults.copy()
            for name, read in mapped:
                values[name] = read(data)
            check_rules(entity, values)
            contacts = {}
            if owner_field is not None:
                contacts = _contacts(groups, data, vm, owner_field, values[owner_field])
            values["source_system"] = SOURCE
        except Invalid as exc:
            return Quarantine(entity, str(exc), key_of(data), json_safe(_blank_as_none(data)), None,
                              record.source, record.line, record.number)
        if single_key is not None:
            key = str(values[single_key])[:64]
        else:
            key = "|".join(str(values[k]) for k in keys)[:64]
        return Row(entity, key, values, contacts, record.source, record.number)

    return Plan(source.name, entity, tuple(compiler.key_columns), run)


@dataclass(frozen=True)
class _ContactGroup:
    """A contact group compiled: a contact of ``kind`` per value of the T24 field ``each``."""

    kind: str
    each: str
    gets: tuple[Callable, ...]  # the mapped fields' getters
    type: object  # the group's ``type`` option (None: the field's default)
    first_primary: bool
    # the fields a contact of the group sets, in the kind's field order (the order
    # convert_fields checks them in): (name, index of its value in ``gets`` or None for
    # ``type``, converter, required, default, the texts it converted)
    fields: tuple[tuple[str, int | None, Callable, bool, object, _Converted], ...]
    template: dict  # every field of the kind at its default, in the kind's field order


def _compile_contacts(profile: Profile, source: Source, compiler: _Compiler,
                      ) -> list[_ContactGroup]:
    groups = source.spec.get("contacts", [])
    table = f"sources.{source.name}.contacts"
    if not isinstance(groups, list):
        compiler.fail("contacts are [[sources.<name>.contacts]] tables", table)
    compiled = []
    for n, group in enumerate(groups):
        extra = set(group) - CONTACT_OPTIONS
        if extra:
            compiler.fail(f"unknown option(s) {', '.join(sorted(extra))}", table,
                          sorted(extra)[0], n)
        kind = group.get("table")
        if kind not in CONTACT_FIELDS:
            compiler.fail(f"table is one of {', '.join(CONTACT_FIELDS)}", table, "table", n)
        each = group.get("each")
        if not isinstance(each, str) or not each:
            compiler.fail("each = \"T24.FIELD\": one contact per value of that field", table,
                          "each", n)
        compiler.columns[each] = None
        targets = {f.name for f in CONTACT_FIELDS[kind]}
        fields = group.get("fields", {})
        gets = {}
        for target, spec in fields.items():
            if target not in targets or target in ("type", "is_primary"):
                compiler.fail(f"{kind} have no mapped field {target!r} (fields: "
                              f"{', '.join(sorted(targets - {'type', 'is_primary'}))}; type "
                              f"and primary are options of the group)", f"{table}.fields",
                              target, n)
            gets[target] = compiler.getter(target, spec, f"{table}.fields", n, grouped=True)[1]
        required = [f.name for f in CONTACT_FIELDS[kind] if f.required]
        for target in required:
            if target not in fields:
                compiler.fail(f"{kind}.{target} is required and not mapped", table, "fields", n)
        primary = group.get("primary", "first")
        if primary not in ("first", "none"):
            compiler.fail("primary is \"first\" or \"none\"", table, "primary", n)
        kind_type = group.get("type")
        index = {target: i for i, target in enumerate(gets)}
        converted = [(spec.name, index.get(spec.name), spec.convert, spec.required, spec.default,
                      _Converted()) for spec in CONTACT_FIELDS[kind]
                     if spec.name in index or (spec.name == "type" and kind_type is not None)]
        compiled.append(_ContactGroup(kind, each, tuple(gets.values()), kind_type,
                                      primary == "first", tuple(converted),
                                      {spec.name: spec.default for spec in CONTACT_FIELDS[kind]}))
    return compiled


def _contacts(groups: list[_ContactGroup], data: Mapping, vm: str, owner_field: str,
              owner: str) -> dict[str, list]:
    """A record's contacts as transform.contacts_of makes them from nested lists: every group's
    values are read first, then converted kind by kind, so the first error is the one
    contacts_of would raise."""
    found: dict[str, list] = {kind: [] for kind in CONTACT_FIELDS}
    for group in groups:
        anchor = data.get(group.each)
        if anchor is None:
            continue
        if type(anchor) is str:
            if not anchor.strip():  # blank: no contact (as a CSV record's None)
                continue
            count = anchor.count(vm) + 1
        else:
            count = len(anchor) if isinstance(anchor, list) else 1
        gets = group.gets
        for position in range(count):
            values = [get(data, position) for get in gets]
            if values.count(None) == len(values):
                continue
            found[group.kind].append((group, position, values))
    contacts = {}
    for kind, items in found.items():
        rows = []
        primary_types: set = set()
        for index, (group, position, values) in enumerate(items):
            row = group.template.copy()
            for name, at, convert, required, default, known in group.fields:
                value = group.type if at is None else values[at]
                if value is None or (type(value) is str and not value.strip()):
                    if required:
                        raise Invalid(f"{kind}[{index}].{name}: required")
                    row[name] = default
                elif type(value) is not str:
                    row[name] = convert(f"{kind}[{index}].{name}", value)
                else:
                    converted = known.get(value, _UNKNOWN)
                    if converted is _UNKNOWN:
                        converted = known.keep(value, convert(f"{kind}[{index}].{name}", value))
                    row[name] = converted
            row["is_primary"] = group.first_primary and position == 0  # to_bool: as it is
            rows.append(finish_contact(kind, index, row, primary_types, owner_field, owner))
        contacts[kind] = rows
    return contacts


def _compile_related(profile: Profile, source: Source, compiler: _Compiler, fields: dict,
                     table: str) -> Plan:
    for target in fields:
        if target not in BILL_FIELDS:
            compiler.fail(f"a related record maps {', '.join(BILL_FIELDS)}", table, target)
    for target, required in BILL_FIELDS.items():
        if required and target not in fields:
            compiler.fail(f"{target} is not mapped", table)
    each = source.spec.get("each")
    if each is not None:
        compiler.columns[each] = None
    compiler.reading_key = True
    gets = {"arrangement": compiler.getter("arrangement", fields["arrangement"], table,
                                           grouped=each is not None)}
    compiler.reading_key = False
    gets.update({t: compiler.getter(t, spec, table, grouped=each is not None)
                 for t, spec in fields.items() if t != "arrangement"})
    context = compiler.context
    bills = context.bills_of(source.name) if context is not None else None
    name = source.name
    vm = profile.value_mark
    key_label, key_get = gets["arrangement"]
    due_label, due_get = gets["due_date"]
    amount_label, amount_get = gets["outstanding"]
    unpaid_label, unpaid_get = gets.get("unpaid", (None, None))

    def run(record: RawRecord) -> Quarantine | None:
        data = record.data
        if data is None:
            return Quarantine(name, record.error or "undecodable record", None, None,
                              record.raw, record.source, record.line, record.number)
        anchor = data.get(each) if each is not None else None
        count = anchor.count(vm) + 1 if type(anchor) is str else \
            len(anchor) if isinstance(anchor, list) else 1
        found = []
        try:
            for position in range(count):
                key = key_get(data, position)
                if key is None:
                    raise Invalid(f"{key_label}: required")
                due = due_get(data, position)
                if not isinstance(due, date):
                    raise Invalid(f"{due_label}: a date is required (convert = \"date\")")
                amount = amount_get(data, position)
                amount = ZERO if amount is None else _amount(amount_label, amount)
                unpaid = True
                if unpaid_get is not None:
                    unpaid = unpaid_get(data, position)
                    if not isinstance(unpaid, bool):
                        raise Invalid(f"{unpaid_label}: expected true or false (a code table of "
                                      f"statuses), got {unpaid!r}")
                found.append((str(key).strip(), due, amount, unpaid))
        except Invalid as exc:
            return Quarantine(name, str(exc), None, json_safe(_blank_as_none(data)), None,
                              record.source, record.line, record.number)
        if bills is not None:
            for item in found:
                bills.add(*item)
        return None

    return Plan(source.name, source.name, tuple(compiler.key_columns), run)


def records_of(profile: Profile, source: str, path: Path,
               context: ReadContext | None) -> Iterator[Row | Quarantine | None]:
    """Transform a file's records with its plan (the reader's loop)."""
    plan = profile.plan(source, context)
    run = plan.transform
    for record in profile.records(path, source, plan):
        yield run(record)


__all__ = ["Bills", "DEFAULT_PROFILE", "MappingError", "Plan", "Profile", "ReadContext",
           "SHIPPED", "default_profile", "load_profile", "records_of"]
