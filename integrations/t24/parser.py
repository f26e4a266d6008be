"""Streaming readers of T24 data files: each yields raw records one at a time, so memory does not
grow with the file.

- ``.jsonl``: one JSON object per line. A line that is not valid JSON (or not an object) is
  yielded as a record with ``error`` set, so the transform quarantines it and its neighbours
  still load. Blank lines are skipped (and not counted).
- ``.json``: one JSON array of objects, decoded element by element from a sliding buffer. A syntax
  error breaks the array's structure, so it raises :class:`T24FormatError` (the file is rejected).
- ``.xml``: ``<T24Export entity="loans" businessDate="2026-11-24">`` with one child element per
  record, parsed with defusedxml's ``iterparse``: a DTD (and so any entity, internal or
  external) is refused outright, and each record is cleared once read.
- ``.csv`` (:func:`read_csv`, what T24's Data Framework writes): a header row of T24 field names,
  then one record per row; the delimiter, quote and encoding come from the mapping profile
  (integrations/t24/mapping.py). A row with more or fewer fields than the header is yielded
  with ``error`` set (quarantined, its neighbours load); values stay strings, multi-values
  still joined by their marks (the mapping splits them).

Numbers in JSON are decoded as ``Decimal`` (never float); XML values are strings. The transform
turns both into typed column values.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from integrations.t24.formats import (
    LIST_FIELDS,
    RECORD_ELEMENTS,
    XML_ROOT,
    T24FormatError,
    format_of,
)

CHUNK_CHARS = 1 << 20  # read JSON arrays 1 MiB at a time
MAX_RECORD_CHARS = 16 << 20  # a single record larger than this is refused
RAW_KEEP_CHARS = 4000  # raw text kept for a record that could not be decoded

_decoder = json.JSONDecoder(parse_float=Decimal)
_WS = " \t\r\n"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read from a file, before validation."""

    entity: str
    source: str  # file name
    number: int  # 1-based position of the record in the file
    line: int | None  # line the record starts on (JSON formats); None for XML
    data: dict | None  # the decoded record, None when it could not be decoded
    raw: str | None = None  # the undecodable text (truncated), when data is None
    error: str | None = None  # why it could not be decoded


def read_records(path: str | Path, entity: str) -> Iterator[RawRecord]:
    """Raw records of a T24 data file; the format is chosen by the file's extension."""
    path = Path(path)
    fmt = format_of(path.name)
    if fmt == "jsonl":
        return _read_jsonl(path, entity)
    if fmt == "json":
        return _read_json_array(path, entity)
    if fmt == "csv":
        return read_csv(path, entity, CsvDialect())
    return _read_xml(path, entity)


@dataclass(frozen=True)
class CsvDialect:
    """How a profile's CSV files are written."""

    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"


def read_csv(path: str | Path, entity: str, dialect: CsvDialect,
             required: Collection[str] = (), blank_as_none: bool = True,
             ) -> Iterator[RawRecord]:
    """Raw records of a CSV file: ``data`` maps each header field to the row's text (blank:
    None, unless ``blank_as_none`` is false — a mapping's getters take blank text as no value,
    and skipping the check per value is a tenth of its reading time). ``required``: header
    fields the mapping reads; a file without one of them is refused whole (a mapping that does
    not fit the extract)."""
    path = Path(path)
    name = path.name
    encoding = "utf-8-sig" if dialect.encoding.lower().replace("_", "-") == "utf-8" \
        else dialect.encoding
    line = 1
    try:
        with path.open("r", encoding=encoding, newline="") as fp:
            rows = csv.reader(fp, delimiter=dialect.delimiter, quotechar=dialect.quote,
                              strict=True)
            try:
                header = [h.strip() for h in next(rows)]
            except StopIteration:
                raise T24FormatError(name, "empty file: no header row") from None
            missing = [f for f in required if f not in header]
            if missing:
                raise T24FormatError(name, "header lacks the field(s) the mapping reads: "
                                           + ", ".join(missing), 1)
            width = len(header)
            number = 0
            line = rows.line_num + 1  # where the next row starts
            for row in rows:
                start, line = line, rows.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                number += 1
                if len(row) != width:
                    yield RawRecord(entity, name, number, start, None,
                                    dialect.delimiter.join(row)[:RAW_KEEP_CHARS],
                                    f"{len(row)} fields, the header has {width}")
                    continue
                yield RawRecord(entity, name, number, start,
                                {h: (v if v.strip() else None)
                                 for h, v in zip(header, row, strict=True)}
                                if blank_as_none else dict(zip(header, row, strict=True)))
    except csv.Error as exc:
        raise T24FormatError(name, f"invalid CSV: {exc}", line) from exc
    except UnicodeDecodeError as exc:
        raise T24FormatError(name, f"not {dialect.encoding}: {exc.reason}") from exc


def count_csv(path: str | Path, dialect: CsvDialect) -> int:
    """How many records a CSV file holds, as :func:`read_csv` counts them (rows after the
    header, blank ones skipped), without building them: verification reads every file once
    before the load."""
    path = Path(path)
    encoding = "utf-8-sig" if dialect.encoding.lower().replace("_", "-") == "utf-8" \
        else dialect.encoding
    try:
        with path.open("r", encoding=encoding, newline="") as fp:
            count = _count_plain_lines(fp, dialect.delimiter, dialect.quote)
            if count is None:  # quotes (a record may span lines): the csv module decides
                fp.seek(0)
                rows = csv.reader(fp, delimiter=dialect.delimiter, quotechar=dialect.quote,
                                  strict=True)
                count = -1 if next(rows, None) is None else \
                    sum(1 for row in rows if row and (len(row) > 1 or row[0].strip()))
            if count < 0:
                raise T24FormatError(path.name, "empty file: no header row")
            return count
    except csv.Error as exc:
        raise T24FormatError(path.name, f"invalid CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise T24FormatError(path.name, f"not {dialect.encoding}: {exc.reason}") from exc


COUNT_CHUNK_CHARS = 1 << 20


def _count_plain_lines(fp, delimiter: str, quote: str) -> int | None:
    """The records of a CSV file with no quote, NUL or lone CR in it, counted by lines as the
    csv module would count its rows (the header not counted; -1: no header), a chunk at a time
    and five times as fast; None as soon as one of those characters shows (the caller then
    reads it with the csv module)."""
    count, carry, header = 0, "", True
    for chunk in iter(lambda: fp.read(COUNT_CHUNK_CHARS), ""):
        text = (carry + chunk).replace("\r\n", "\n")
        if quote in text or "\0" in text or "\r" in text.rstrip("\r"):
            return None
        lines = text.split("\n")
        carry = lines.pop()
        if header and lines:
            header = False
            lines = lines[1:]
        count += sum(1 for line in lines if delimiter in line or line.strip())
    last = carry.rstrip("\r")
    if "\r" in last:
        return None
    if header:
        return 0 if carry else -1
    return count + (1 if delimiter in last or last.strip() else 0)


def count_records(path: str | Path, entity: str) -> int:
    """How many records the file holds (reads it through; raises T24FormatError if the file
    cannot be read as a whole)."""
    path = Path(path)
    if format_of(path.name) == "jsonl":  # one record per non-blank line, decodable or not
        with path.open("rb") as fp:
            return sum(1 for line in fp if line.strip())
    return sum(1 for _ in read_records(path, entity))


# -- JSON Lines ----------------------------------------------------------------------------------
def _read_jsonl(path: Path, entity: str) -> Iterator[RawRecord]:
    name = path.name
    number = 0
    with path.open("rb") as fp:
        for line_no, line in enumerate(fp, start=1):
            if not line.strip():
                continue
            number += 1
            try:
                text = line.decode("utf-8-sig" if line_no == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield RawRecord(entity, name, number, line_no, None,
                                line[:RAW_KEEP_CHARS].decode("utf-8", "replace"),
                                f"not UTF-8: {exc.reason} at byte {exc.start}")
                continue
            try:
                data = _decoder.decode(text)
            except json.JSONDecodeError as exc:
                yield RawRecord(entity, name, number, line_no, None, text[:RAW_KEEP_CHARS],
                                f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            except RecursionError:
                yield RawRecord(entity, name, number, line_no, None, text[:RAW_KEEP_CHARS],
                                "invalid JSON: nested too deeply")
                continue
            if not isinstance(data, dict):
                yield RawRecord(entity, name, number, line_no, None, text[:RAW_KEEP_CHARS],
                                f"a record must be a JSON object, got {type(data).__name__}")
                continue
            yield RawRecord(entity, name, number, line_no, data)


# -- JSON array, incrementally -------------------------------------------------------------------
class _Buffer:
    """A sliding window over a text file: ``text[pos:]`` is what has not been consumed yet."""

    def __init__(self, fp, source: str):
        self.fp = fp
        self.source = source
        self.text = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # line number at ``pos``

    def fill(self) -> bool:
        """Read more; False at end of file."""
        if self.eof:
            return False
        chunk = self.fp.read(CHUNK_CHARS)
        if not chunk:
            self.eof = True
            return False
        self.text = self.text[self.pos:] + chunk
        self.pos = 0
        return True

    def advance(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def skip_ws(self) -> str | None:
        """Skip whitespace; the next character, or None at end of file."""
        while True:
            end = self.pos
            while end < len(self.text) and self.text[end] in _WS:
                end += 1
            self.advance(end)
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.fill():
                return None

    def error(self, reason: str) -> T24FormatError:
        return T24FormatError(self.source, reason, self.line)


def _read_json_array(path: Path, entity: str) -> Iterator[RawRecord]:
    name = path.name
    with path.open("r", encoding="utf-8-sig", newline="") as fp:
        buf = _Buffer(fp, name)
        try:
            if buf.skip_ws() != "[":
                raise buf.error("a .json file must hold one JSON array of records")
            buf.advance(buf.pos + 1)
            number = 0
            first = True
            while True:
                char = buf.skip_ws()
                if char is None:
                    raise buf.error("unexpected end of file inside the JSON array")
                if char == "]":
                    buf.advance(buf.pos + 1)
                    break
                if not first:
                    if char != ",":
                        raise buf.error("expected ',' or ']' between records")
                    buf.advance(buf.pos + 1)
                    if buf.skip_ws() is None:
                        raise buf.error("unexpected end of file inside the JSON array")
                first = False
                line = buf.line
                data, end = _decode_one(buf)
                buf.advance(end)
                number += 1
                if not isinstance(data, dict):
                    yield RawRecord(entity, name, number, line, None,
                                    json.dumps(data, default=str)[:RAW_KEEP_CHARS],
                                    f"a record must be a JSON object, got {type(data).__name__}")
                    continue
                yield RawRecord(entity, name, number, line, data)
            if buf.skip_ws() is not None:
                raise buf.error("unexpected data after the JSON array")
        except UnicodeDecodeError as exc:
            raise T24FormatError(name, f"not UTF-8: {exc.reason}") from exc


def _decode_one(buf: _Buffer) -> tuple[object, int]:
    """Decode the JSON value at ``buf.pos``, reading more of the file while it is incomplete."""
    while True:
        try:
            data, end = _decoder.raw_decode(buf.text, buf.pos)
        except json.JSONDecodeError as exc:
            # Incomplete or wrong? Only more text can tell (an unterminated string reports
            # where it starts), so read on up to the size limit of one record.
            if len(buf.text) - buf.pos < MAX_RECORD_CHARS and buf.fill():
                continue
            line = buf.line + buf.text.count("\n", buf.pos, exc.pos)
            raise T24FormatError(buf.source, f"invalid JSON: {exc.msg}", line) from exc
        except RecursionError:
            raise T24FormatError(buf.source, "invalid JSON: nested too deeply",
                                 buf.line) from None
        # A number at the very end of the buffer may continue in the next chunk.
        if end >= len(buf.text) and not buf.eof and buf.fill():
            continue
        return data, end


# -- XML -----------------------------------------------------------------------------------------
def _read_xml(path: Path, entity: str) -> Iterator[RawRecord]:
    name = path.name
    record_tag = RECORD_ELEMENTS.get(entity)  # a mapping profile's source: any element
    number = 0
    depth = 0
    root: Element | None = None
    try:
        # forbid_dtd: any <!DOCTYPE> is refused, so no entity (internal or external) can be
        # declared, let alone expanded.
        for event, elem in iterparse(str(path), events=("start", "end"), forbid_dtd=True,
                                     forbid_entities=True, forbid_external=True):
            if event == "start":
                depth += 1
                if depth == 1:
                    root = elem
                    if elem.tag != XML_ROOT:
                        raise T24FormatError(name, f"root element must be <{XML_ROOT}>, "
                                                   f"got <{elem.tag}>")
                    declared = elem.get("entity")
                    if declared is not None and declared != entity:
                        raise T24FormatError(name, f"file declares entity {declared!r}, "
                                                   f"expected {entity!r}")
                continue
            depth -= 1
            if depth != 1:
                continue
            number += 1
            if record_tag is not None and elem.tag != record_tag:
                yield RawRecord(entity, name, number, None, None, _xml_text(elem),
                                f"unexpected element <{elem.tag}>, expected <{record_tag}>")
            else:
                yield RawRecord(entity, name, number, None, _xml_record(elem))
            elem.clear()
            if root is not None:
                root.remove(elem)  # keep memory flat: drop records already yielded
    except DefusedXmlException as exc:
        raise T24FormatError(name, f"forbidden XML construct: {type(exc).__name__} "
                                   f"(DTDs and entities are not accepted)") from exc
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise T24FormatError(name, f"invalid XML: {exc}", line) from exc


def _xml_value(elem: Element) -> str | None:
    if elem.get("nil") == "true":
        return None
    text = (elem.text or "").strip()
    return text or None


def _xml_record(elem: Element) -> dict:
    record: dict = {}
    for child in elem:
        item_tag = LIST_FIELDS.get(child.tag)
        if item_tag is not None:
            record[child.tag] = [
                {field.tag: _xml_value(field) for field in item}
                for item in child if item.tag == item_tag
            ]
        else:
            record[child.tag] = _xml_value(child)
    return record


def _xml_text(elem: Element) -> str:
    return tostring(elem, encoding="unicode")[:RAW_KEEP_CHARS]
