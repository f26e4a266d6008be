"""Streaming readers of T24 files: JSON Lines, incremental JSON arrays and defused XML."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from integrations.t24 import parser
from integrations.t24.formats import T24FormatError
from integrations.t24.parser import count_records, read_records

LOANS = [
    {"account_number": f"LD26{i:08d}", "cif": "10000001", "outstanding": "1500000.50",
     "dpd": i, "note": "dư nợ {\"x\": [1, 2]}\n"}
    for i in range(1, 8)
]


def write_jsonl(path, records, extra_lines=()):
    lines = [json.dumps(r, ensure_ascii=False) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_yields_records_with_line_numbers_and_keeps_going_after_a_bad_line(tmp_path):
    path = tmp_path / "t24_loans_20261124.jsonl"
    lines = [json.dumps(LOANS[0]), "", '{"account_number": "LD1", "dpd": }', "[1, 2]",
             json.dumps(LOANS[1])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = list(read_records(path, "loans"))
    assert [r.number for r in records] == [1, 2, 3, 4]
    assert [r.line for r in records] == [1, 3, 4, 5]  # the blank line is neither read nor counted
    assert records[0].data["account_number"] == LOANS[0]["account_number"]
    assert records[1].data is None and "invalid JSON" in records[1].error
    assert records[1].raw == '{"account_number": "LD1", "dpd": }'
    assert records[2].data is None and "JSON object" in records[2].error
    assert records[3].data["dpd"] == 2
    assert count_records(path, "loans") == 4


def test_json_numbers_are_decimal_never_float(tmp_path):
    path = tmp_path / "t24_loans_20261124.jsonl"
    path.write_text('{"outstanding": 1234.56, "dpd": 3}\n', encoding="utf-8")
    (record,) = read_records(path, "loans")
    assert record.data["outstanding"] == Decimal("1234.56")
    assert isinstance(record.data["outstanding"], Decimal)
    assert record.data["dpd"] == 3


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_json_array_is_read_incrementally_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(parser, "CHUNK_CHARS", chunk)
    path = tmp_path / "t24_loans_20261124.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in LOANS)
                    + "\n]\n", encoding="utf-8")
    records = list(read_records(path, "loans"))
    assert [r.data["account_number"] for r in records] == [r["account_number"] for r in LOANS]
    assert [r.data["note"] for r in records] == [r["note"] for r in LOANS]
    assert [r.line for r in records] == [2, 3, 4, 5, 6, 7, 8]
    assert records[0].data["outstanding"] == "1500000.50"


def test_an_empty_json_array_has_no_records(tmp_path):
    path = tmp_path / "t24_loans_20261124.json"
    path.write_text(" [ ] ", encoding="utf-8")
    assert count_records(path, "loans") == 0


@pytest.mark.parametrize("text, reason", [
    ('[{"a": 1},\n{"a": }]', "invalid JSON"),
    ('[{"a": 1} {"a": 2}]', "expected ','"),
    ('[{"a": 1},', "end of file"),
    ('{"a": 1}', "one JSON array"),
    ('[{"a": 1}] trailing', "after the JSON array"),
])
def test_a_broken_json_array_rejects_the_file(tmp_path, monkeypatch, text, reason):
    monkeypatch.setattr(parser, "CHUNK_CHARS", 5)
    path = tmp_path / "t24_loans_20261124.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(T24FormatError, match=reason):
        list(read_records(path, "loans"))


def test_json_array_error_reports_the_line(tmp_path):
    path = tmp_path / "t24_loans_20261124.json"
    path.write_text('[\n{"a": 1},\n{"a": 2},\n{"a": oops}\n]', encoding="utf-8")
    with pytest.raises(T24FormatError) as info:
        list(read_records(path, "loans"))
    assert info.value.line == 4


XML = """<?xml version="1.0" encoding="UTF-8"?>
<T24Export entity="customers" businessDate="2026-11-24">
  <customer>
    <cif>10000001</cif><name>Nguyễn Văn An &amp; Co</name><segment/>
    <national_id nil="true"/>
    <phones><phone><type>MOBILE</type><number>0901234567</number></phone>
            <phone><type>HOME</type><number>02838123456</number></phone></phones>
    <addresses/>
  </customer>
  <customer><cif>10000002</cif><name>Trần Thị Bình</name></customer>
</T24Export>
"""


def test_xml_records_with_nested_contact_lists(tmp_path):
    path = tmp_path / "t24_customers_20261124.xml"
    path.write_text(XML, encoding="utf-8")
    first, second = read_records(path, "customers")
    assert first.data["cif"] == "10000001"
    assert first.data["name"] == "Nguyễn Văn An & Co"
    assert first.data["segment"] is None and first.data["national_id"] is None
    assert first.data["phones"] == [{"type": "MOBILE", "number": "0901234567"},
                                    {"type": "HOME", "number": "02838123456"}]
    assert first.data["addresses"] == []
    assert (second.number, second.data["name"]) == (2, "Trần Thị Bình")


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE T24Export [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE T24Export [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE T24Export SYSTEM "http://127.0.0.1:9/evil.dtd">',
])
def test_xml_with_a_dtd_or_entity_is_refused_without_expansion(tmp_path, doctype):
    path = tmp_path / "t24_customers_20261124.xml"
    path.write_text('<?xml version="1.0"?>\n' + doctype + '\n<T24Export entity="customers">'
                    "<customer><cif>1</cif><name>&xxe;</name></customer></T24Export>",
                    encoding="utf-8")
    with pytest.raises(T24FormatError, match="forbidden XML construct"):
        list(read_records(path, "customers"))


@pytest.mark.parametrize("text, reason", [
    ("<Other><customer/></Other>", "root element"),
    ('<T24Export entity="loans"><loan/></T24Export>', "declares entity 'loans'"),
    ("<T24Export><customer><cif>1</cif></T24Export>", "invalid XML"),
])
def test_xml_of_the_wrong_shape_is_refused(tmp_path, text, reason):
    path = tmp_path / "t24_customers_20261124.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(T24FormatError, match=reason):
        list(read_records(path, "customers"))


def test_an_unexpected_xml_element_is_a_bad_record_not_a_bad_file(tmp_path):
    path = tmp_path / "t24_customers_20261124.xml"
    path.write_text("<T24Export><customer><cif>1</cif></customer><loan><x>1</x></loan>"
                    "<customer><cif>2</cif></customer></T24Export>", encoding="utf-8")
    records = list(read_records(path, "customers"))
    assert [r.data and r.data["cif"] for r in records] == ["1", None, "2"]
    assert "unexpected element <loan>" in records[1].error


def test_unknown_extension_is_refused(tmp_path):
    path = tmp_path / "t24_loans_20261124.txt"  # (.csv is a format since issue 20)
    path.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(T24FormatError, match="extension"):
        read_records(path, "loans")
