"""T24 files: what the sandbox generator writes, the streaming parser gives back (in every
format, whatever the text holds and however the file is chunked); any bytes at all are either
records or a T24FormatError; a bad line never hides its neighbours; a manifest, however
mangled, is verified without an exception. Complements tests/unit/test_t24_fuzz.py (which
fuzzes the transform alone)."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date
from unittest import mock

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from integrations.fields import Row
from integrations.sandbox.t24_files import FileWriter, SeedSource, record_key
from integrations.t24 import parser
from integrations.t24.formats import ENTITIES, T24FormatError, manifest_name
from integrations.t24.manifest import Manifest, ManifestError, verify
from integrations.t24.parser import RawRecord, read_records
from integrations.t24.transform import transform
from tests.property.conftest import examples
from tests.property.strategies import clean_text, json_values

BASE = date(2026, 11, 24)
FORMATS = ("jsonl", "json", "xml")
REQUIRED = ("name", "product_type")
# text fields of each entity a sender fills freely (the rest are codes, dates, amounts)
FREE_TEXT = {
    "customers": ("name", "national_id", "company_name", "segment"),
    "reference_customers": ("name", "national_id"),
    "collaterals": ("description", "vehicle_make", "license_plate", "property_address"),
    "loans": ("product_type",),
    "loan_collaterals": (),
}


@pytest.fixture(scope="module")
def seed_records():
    records: dict[str, list[dict]] = {e: [] for e in ENTITIES}
    for entity, record in SeedSource(6, 9, business_date=BASE).records():
        records[entity].append(record)
    return records


def fresh_dir(tmp_path):
    path = tmp_path / uuid.uuid4().hex[:12]
    path.mkdir()
    return path


def write_set(directory, records_by_entity: dict[str, list[dict]], fmt: str):
    entries = []
    for entity, records in records_by_entity.items():
        writer = FileWriter(directory, entity, BASE, fmt)
        for record in records:
            writer.write(record)
        entries.append(writer.close())
    return Manifest(BASE, "full", entries).write(directory / manifest_name(BASE))


@st.composite
def hostile_sets(draw, seed):
    """The seed's records with free-text fields (and contact lines) replaced by drawn text."""
    out = {}
    for entity in ENTITIES:
        records = copy.deepcopy(seed[entity])
        for record in records:
            for name in FREE_TEXT[entity]:
                if draw(st.booleans()):  # within the column's length; a name is required
                    text = draw(clean_text)[:20]
                    record[name] = text if text.strip() or name not in REQUIRED else text + "x"
            for address in record.get("addresses", []):
                address["line1"] = draw(clean_text).strip() or "x"
        out[entity] = records
    return out


def rows(path, entity):
    return [transform(r) for r in read_records(path, entity)]


@examples(0.6)
@given(data=st.data())
def test_every_format_gives_back_what_the_generator_wrote(tmp_path, seed_records, data):
    records = data.draw(hostile_sets(seed_records))
    typed = {}
    for fmt in FORMATS:
        directory = fresh_dir(tmp_path)
        result = verify(write_set(directory, records, fmt))
        assert result.ok, result.errors
        for entry, path in result.files():
            read = list(read_records(path, entry.entity))
            assert [r.number for r in read] == list(range(1, len(records[entry.entity]) + 1))
            if fmt != "xml":  # JSON carries the values exactly
                assert [r.data for r in read] == records[entry.entity]
            results = [transform(r) for r in read]
            mine = [(x.key, x.values, x.contacts) if isinstance(x, Row) else x.reason
                    for x in results]
            # whatever the format, the same typed rows (XML values are strings: the
            # transform types them)
            typed.setdefault(entry.entity, mine)
            assert mine == typed[entry.entity], (fmt, entry.entity)
    # the seed's records are valid: nothing of them is quarantined for the drawn text
    for entity, items in typed.items():
        assert all(not isinstance(x, str) for x in items), (entity, items)
        keys = [x[0] for x in items]
        assert keys == [record_key(entity, r) for r in records[entity]]


@examples()
@given(chunk=st.integers(min_value=1, max_value=64), spaces=st.sampled_from(["", " ", "\n\t "]),
       data=st.data())
def test_a_json_array_reads_the_same_however_the_file_is_chunked(tmp_path, seed_records, chunk,
                                                                   spaces, data):
    records = data.draw(st.lists(st.sampled_from(seed_records["loans"]), max_size=6))
    text = "[" + spaces + ("," + spaces).join(
        json.dumps(r, ensure_ascii=data.draw(st.booleans())) for r in records) + spaces + "]"
    path = fresh_dir(tmp_path) / "t24_loans_20261124.json"
    path.write_text(spaces + text + spaces, encoding="utf-8")
    with mock.patch.object(parser, "CHUNK_CHARS", chunk):
        read = list(read_records(path, "loans"))
    assert [r.data for r in read] == records
    assert [r.number for r in read] == list(range(1, len(records) + 1))


garbage_line = st.one_of(
    st.text(st.characters(blacklist_characters="\n\r"), min_size=1, max_size=40),
    st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.builds(lambda v: json.dumps(v), json_values),
)


@examples()
@given(data=st.data())
def test_a_bad_jsonl_line_is_one_bad_record_and_its_neighbours_still_load(tmp_path,
                                                                         seed_records, data):
    good = seed_records["loans"]
    lines: list[tuple[bytes, dict | None]] = []
    for record in good:
        lines.extend((g if isinstance(g, bytes) else g.encode("utf-8"), None)
                     for g in data.draw(st.lists(garbage_line, max_size=2)))
        lines.append((json.dumps(record, ensure_ascii=False).encode("utf-8"), record))
    path = fresh_dir(tmp_path) / "t24_loans_20261124.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in lines) + b"\n")
    read = list(read_records(path, "loans"))
    nonblank = [(n, line, rec) for n, (line, rec) in enumerate(lines, start=1) if line.strip()]
    assert len(read) == len(nonblank)
    for raw, (line_no, _line, record) in zip(read, nonblank, strict=True):
        assert raw.line == line_no
        if record is not None:
            assert raw.data == record  # a good neighbour comes through untouched
        elif raw.data is None:
            assert raw.error and raw.raw is not None  # quarantined with a reason
    results = [transform(r) for r in read]
    assert [x.key for x in results if isinstance(x, Row) and x.key in
            {record_key("loans", g) for g in good}] == [record_key("loans", g) for g in good]


def outcome(path, entity):
    try:
        return list(read_records(path, entity))
    except T24FormatError as exc:
        assert exc.reason and exc.source == path.name
        return exc


@examples()
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                         st.builds(lambda v: json.dumps(v).encode(), json_values)),
       ext=st.sampled_from(FORMATS))
def test_any_bytes_are_records_or_a_format_error(tmp_path, content, ext):
    path = fresh_dir(tmp_path) / f"t24_loans_20261124.{ext}"
    path.write_bytes(content)
    result = outcome(path, "loans")
    if isinstance(result, list):
        assert all(isinstance(r, RawRecord) and (r.data is None) == bool(r.error)
                   for r in result)
        for r in result:
            transform(r)  # never raises


XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
DOCTYPES = [
    '<!DOCTYPE T24Export [<!ENTITY x "{payload}">]>',
    '<!DOCTYPE T24Export [<!ENTITY x SYSTEM "file:///etc/{payload}">]>',
    '<!DOCTYPE T24Export SYSTEM "http://127.0.0.1:9/{payload}.dtd">',
    '<!DOCTYPE T24Export [<!ENTITY a "{payload}"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;">]>',
    '<!DOCTYPE T24Export [<!ENTITY % p SYSTEM "file:///{payload}"> %p;]>',
]


@examples()
@given(doctype=st.sampled_from(DOCTYPES), payload=st.text(st.characters(
    whitelist_categories=("Ll", "Lu", "Nd")), max_size=8), records=st.integers(0, 3))
def test_an_xml_file_with_any_doctype_is_refused_whole(tmp_path, doctype, payload, records):
    body = "".join("<loan><account_number>&x;</account_number></loan>"
                   for _ in range(records))
    path = fresh_dir(tmp_path) / "t24_loans_20261124.xml"
    path.write_text(XML_HEAD + doctype.format(payload=payload) +
                    f'<T24Export entity="loans">{body}</T24Export>', encoding="utf-8")
    result = outcome(path, "loans")
    assert isinstance(result, T24FormatError) and "DTD" in result.reason


def _mutations():
    """Ways a manifest's JSON can be wrong: a field replaced, removed or added, anywhere."""
    where = st.sampled_from(["top", "file"])
    key = st.sampled_from(["system", "version", "business_date", "mode", "generated_at",
                           "files", "entity", "name", "format", "records", "bytes", "sha256",
                           "control_totals", "extra"])
    value = st.one_of(json_values, st.sampled_from([
        "2026-02-30", "2026-11-24\n", "٢٠٢٦-١١-٢٤", "2026-11-24T25:00", "20261124", -1, 2**70,
        1.5, "t24_loans_20261124.xml", "../t24_loans_20261124.jsonl", "a" * 64, "0" * 64,
        {"outstanding": "1e5"}, {"outstanding": "١٢"}, [], {}, "full", "delta"]))
    return st.lists(st.tuples(where, key, st.one_of(value, st.just(KeyError))), min_size=1,
                    max_size=3)


@examples()
@example(mutations=[("top", "generated_at", "yesterday")], index=0, raw=False, data=None)
@given(mutations=_mutations(), index=st.integers(0, 4), raw=st.booleans(), data=st.data())
def test_a_mangled_manifest_is_refused_with_a_reason_never_an_exception(
        tmp_path, seed_records, mutations, index, raw, data):
    directory = fresh_dir(tmp_path)
    path = write_set(directory, {"loans": seed_records["loans"],
                                 "customers": seed_records["customers"]}, "jsonl")
    document = json.loads(path.read_text())
    for where, key, value in mutations:
        target = document if where == "top" else document["files"][index % 2] \
            if isinstance(document.get("files"), list) and len(document["files"]) == 2 \
            else document
        if value is KeyError:
            target.pop(key, None)
        else:
            target[key] = value
    text = json.dumps(document) if not raw else data.draw(st.text(max_size=200))
    assume(text != path.read_text())
    path.write_text(text, encoding="utf-8")
    try:
        Manifest.load(path)
    except ManifestError as exc:
        assert str(exc).startswith(path.name)
    result = verify(path)  # never raises
    if result.ok:  # only a change that does not matter keeps the set loadable
        assert result.manifest is not None and {e.entity for e in result.manifest.files} == {
            "loans", "customers"}
    else:
        assert result.errors and all(isinstance(e, str) and e for e in result.errors)


@pytest.mark.parametrize("business_date", ["2026-02-30", "2026-13-01"])
def test_a_manifest_with_an_impossible_business_date_is_refused(tmp_path, business_date):
    path = tmp_path / "t24_manifest_20261124.json"
    path.write_text(json.dumps({"system": "T24", "version": 1, "business_date": business_date,
                                "mode": "full", "files": []}), encoding="utf-8")
    result = verify(path)
    assert not result.ok and "business_date" in result.errors[0]


@pytest.mark.parametrize("ext", ["jsonl", "json"])
def test_a_deeply_nested_record_is_a_bad_record_not_a_crash(tmp_path, ext):
    path = tmp_path / f"t24_loans_20261124.{ext}"
    deep = "[" * 100_000
    path.write_text(deep + "\n" if ext == "jsonl" else f"[{deep}", encoding="utf-8")
    result = outcome(path, "loans")
    assert isinstance(result, T24FormatError) or result[0].error


@given(text=st.text(alphabet='ab;,"\r\n \t\x00ý', max_size=60),
       delimiter=st.sampled_from([",", ";", "\t"]), chunk=st.sampled_from([1, 2, 3, 7, 1 << 20]))
@example(text="h\r\n\r\na\r\n", delimiter=",", chunk=2)
@example(text="h\na\r", delimiter=",", chunk=1 << 20)
@example(text="", delimiter=",", chunk=1 << 20)
@example(text="\r", delimiter=",", chunk=1 << 20)  # a header of nothing, ended by a lone CR
def test_a_csv_file_holds_as_many_records_as_verification_counts(tmp_path_factory, text,
                                                                  delimiter, chunk):
    """Verification counts a CSV file's records by lines when nothing in it is quoted (a chunk
    at a time): the count is the reader's, whatever the line ends, blanks and chunk edges."""
    path = tmp_path_factory.mktemp("csv") / "t24_customers_20261124.csv"
    path.write_bytes(text.encode())
    dialect = parser.CsvDialect(delimiter=delimiter)
    try:
        expected = sum(1 for _ in parser.read_csv(path, "customers", dialect))
    except T24FormatError:
        expected = None
    with mock.patch.object(parser, "COUNT_CHUNK_CHARS", chunk):
        try:
            counted = parser.count_csv(path, dialect)
        except T24FormatError:
            counted = None
    assert counted == expected
