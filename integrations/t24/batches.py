"""Read, validate and encode a T24 set's files in batches ready for ``COPY``, optionally in a
child process that works one batch ahead of the loader.

A :class:`Batch` holds up to ``batch_size`` records of one file: the valid rows already encoded
as ``COPY … FROM STDIN`` text (the entity's staging columns plus ``_rec``, the record's number in
the file), the rows of their phones / addresses / e-mails likewise, the quarantined records,
and the counts and control sums of the rows. The loader only hands the bytes to PostgreSQL: no
per-row Python work is left in the process that talks to the database.

With ``read_ahead`` the files are read in a forked child process (it reads files and writes to
its pipe, nothing else): on a multi-core host parsing and validating the next batch overlap with
PostgreSQL's work on the current one (a thread would not: the GIL). The pipe holds about one
batch, so memory stays flat; the child dies with the loader (``PR_SET_PDEATHSIG``, and a write
to a closed pipe fails).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import multiprocessing
import os
import pickle
import re
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from operator import itemgetter
from pathlib import Path

from integrations.fields import Quarantine, Row, json_safe
from integrations.t24.mapping import Profile, ReadContext, default_profile, records_of
from integrations.t24.parser import read_records
from integrations.t24.transform import ENTITY_FIELDS, ControlTotals, transform

CONTACT_TABLES = {
    # table: (identifying columns besides the owner, data columns)
    "phones": (("number",), ("type", "number_e164", "is_primary", "is_verified",
                             "do_not_contact")),
    "addresses": (("type", "line1"), ("line2", "ward", "district", "city", "province",
                                      "country", "postal_code", "lat", "lon", "is_primary",
                                      "is_verified")),
    "emails": (("address",), ("type", "is_primary", "is_verified")),
}
CONTACT_OWNERS = {"customers": "cif", "reference_customers": "ref_cif"}
RECORD_COLUMN = "_rec"  # the staged row's record number in its file
# The reader process starts the set's first file with a small batch that grows RAMP times a
# batch: the loader (and PostgreSQL) wait for a small batch instead of a whole one, and each
# next one is mostly read while the previous one loads (reading a record takes about half the
# time of loading it). Few steps: every batch costs the loader a round of statements.
FIRST_BATCH = 2000
RAMP = 2

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux
PIPE_SIZE = 1 << 20  # Linux's default limit for an unprivileged process (pipe-max-size)

_ESCAPE = re.compile(r"[\\\t\n\r]")
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def load_columns(entity: str) -> list[str]:
    """The columns a row of ``entity`` is staged and upserted with."""
    columns = [f.name for f in ENTITY_FIELDS[entity]]
    if entity == "loans":
        columns.append("bucket")
    return [*columns, "source_system"]


def contact_columns(entity: str, table: str) -> list[str]:
    ident, data = CONTACT_TABLES[table]
    return [CONTACT_OWNERS[entity], *ident, *data]


def copy_value(value) -> str:
    """One value in ``COPY`` text format."""
    kind = type(value)
    if value is None:
        return "\\N"
    if kind is str:
        return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], value) if _ESCAPE.search(value) \
            else value
    if kind is bool:
        return "t" if value else "f"
    if kind is date:
        return value.isoformat()
    if kind is int or kind is Decimal:
        return str(value)
    raise TypeError(f"no COPY text for {kind.__name__}")


_STR_IS_COPY_TEXT = frozenset({int, Decimal, date})  # str() of these is copy_value's text


def copy_line(values: list) -> str:
    """One row in ``COPY`` text format: ``copy_value`` of each value, tab-separated. Built
    without a call per value (the reader's busiest line): text is taken as it is, then the
    line is checked — a tab, newline, carriage return or backslash beyond the separators and
    the NULLs' ``\\N`` means a value needed escaping, and the line is redone value by value."""
    line = "\t".join([v if type(v) is str else "\\N" if v is None
                      else ("t" if v else "f") if type(v) is bool
                      else str(v) if type(v) in _STR_IS_COPY_TEXT else copy_value(v)
                      for v in values])
    if line.count("\t") != len(values) - 1 or line.count("\\") != values.count(None) \
            or "\n" in line or "\r" in line:
        line = "\t".join(map(copy_value, values))
    return line + "\n"


@dataclass
class Batch:
    entity: str
    source_file: str
    records: int = 0  # records read (rows and quarantined)
    rows: int = 0  # valid rows staged in ``data``
    data: bytes = b""  # COPY text: load_columns(entity) + _rec
    contacts: dict[str, bytes] = field(default_factory=dict)  # table -> COPY text
    contact_owners: int = 0  # rows with at least one phone, address or e-mail
    quarantined: list[Quarantine] = field(default_factory=list)
    bad_keys: list[str] = field(default_factory=list)  # keys of quarantined records
    unreadable_keys: int = 0  # quarantined records without a readable key
    totals: ControlTotals | None = None  # of this batch's rows


class _Builder:
    def __init__(self, entity: str, source_file: str):
        self.entity = entity
        # related records (bills) are only counted: they have no columns of their own
        columns = load_columns(entity) if entity in ENTITY_FIELDS else []
        self.row_values = itemgetter(*columns) if columns else None
        self.owner = CONTACT_OWNERS.get(entity)
        self.batch = Batch(entity, source_file, totals=ControlTotals(entity))
        self.lines: list[str] = []
        self.contact_lines: dict[str, list[str]] = {t: [] for t in CONTACT_TABLES} \
            if self.owner else {}
        # per table: the row's values, and how many of them identify it (owner + identity)
        self.contact_values = {t: (itemgetter(*contact_columns(entity, t)),
                                   len(CONTACT_TABLES[t][0]) + 1)
                               for t in self.contact_lines}
        self.keys: set[str] = set()
        self.contact_seen: set[tuple] = set()

    def add(self, item: Row | Quarantine | None) -> None:
        batch = self.batch
        batch.records += 1
        if item is None:  # a related record (a bill), kept by the mapping's ReadContext
            batch.totals.rows += 1
            return
        if isinstance(item, Quarantine):
            batch.totals.add(item)
            batch.quarantined.append(item)
            if item.record_key:
                batch.bad_keys.append(item.record_key)
            else:
                batch.unreadable_keys += 1
            return
        if item.key in self.keys:  # the first record of a key won
            batch.totals.quarantined += 1
            batch.quarantined.append(Quarantine(
                self.entity, f"duplicate {self.entity} key {item.key!r} in {item.source_file}",
                item.key, json_safe(item.values), None, item.source_file, None,
                item.record_number))
            return
        self.keys.add(item.key)
        batch.totals.add(item)
        batch.rows += 1
        self.lines.append(copy_line([*self.row_values(item.values), item.record_number]))
        contacts = item.contacts
        if not contacts or not self.contact_lines:
            return
        owns = False
        seen = self.contact_seen
        for table, lines in self.contact_lines.items():
            rows = contacts.get(table)
            if not rows:
                continue
            owns = True
            contact_values, width = self.contact_values[table]
            for contact in rows:
                row = list(contact_values(contact))
                identity = tuple(row[:width])
                if identity not in seen:  # the same number twice: once
                    seen.add(identity)
                    lines.append(copy_line(row))
        if owns:
            batch.contact_owners += 1

    def finish(self) -> Batch:
        batch = self.batch
        batch.data = "".join(self.lines).encode()
        batch.contacts = {t: "".join(lines).encode() for t, lines in self.contact_lines.items()}
        return batch


def file_batches(entity: str, path: Path, batch_size: int,
                 ramp_from: int | None = None, profile: Profile | None = None,
                 context: ReadContext | None = None,
                 items: Iterator[Row | Quarantine | None] | None = None) -> Iterator[Batch]:
    """The file's records, validated and encoded, ``batch_size`` records a batch. ``ramp_from``:
    the first batch holds that many records, each next one ``RAMP`` times more, up to
    ``batch_size`` (see ``_child``). ``entity``: the file's source in the mapping ``profile``
    (default crm-json, whose sources are the entities); a mapped profile's related records
    (bills) go into ``context`` and yield batches of counts only."""
    profile = profile or default_profile()
    target = profile.target(entity)
    if items is not None:  # the file's items, already under way (_RelatedAhead)
        pass
    elif profile.native:  # the product's own record shape: the transform, as it always was
        items = map(transform, read_records(path, entity))
    else:
        items = records_of(profile, entity, path, context)
    builder = _Builder(target, path.name)
    size = min(ramp_from or batch_size, batch_size)
    for item in items:
        builder.add(item)
        if builder.batch.records >= size:
            yield builder.finish()
            builder = _Builder(target, path.name)
            size = min(size * RAMP, batch_size)
    if builder.batch.records:
        yield builder.finish()


class BatchReader:
    """The batches of a set's files, in order: ``for batch in reader.batches(entity)`` per
    file, in the order the files were given. A context manager (stops the child)."""

    def __init__(self, files: list[tuple[str, Path]], batch_size: int, read_ahead: bool,
                 profile: Profile | None = None, context: ReadContext | None = None):
        self.files = files
        self.batch_size = batch_size
        self.read_ahead = read_ahead
        self.profile = profile or default_profile()
        self.context = context  # a mapped profile's bills, read before their arrangements
        self.process = None
        self.pipe = None

    def __enter__(self) -> BatchReader:
        # a daemonic process may not have children: it reads in-process
        if self.read_ahead and not multiprocessing.current_process().daemon:
            context = multiprocessing.get_context("fork")
            reader, writer = context.Pipe(duplex=False)
            self.process = context.Process(target=_child, name="t24-reader", daemon=True,
                                           args=(writer, self.files, self.batch_size,
                                                 self.profile, self.context))
            self.process.start()
            writer.close()
            self.pipe = reader
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.pipe.close()
            if self.process.is_alive():
                self.process.kill()
            self.process.join()
            self.process = None

    def batches(self, entity: str) -> Iterator[Batch]:
        if self.pipe is None:
            path = next(p for e, p in self.files if e == entity)
            yield from file_batches(entity, path, self.batch_size, None, self.profile,
                                    self.context)
            return
        while True:
            try:
                kind, value = pickle.loads(self.pipe.recv_bytes())
            except EOFError:
                raise RuntimeError("the T24 reader process ended unexpectedly") from None
            if kind == "batch":
                yield value
            elif kind == "end":
                if value != entity:
                    raise RuntimeError(f"T24 reader: expected {entity}, got {value}")
                return
            else:  # "error": the reader's exception, raised here
                raise value


class _RelatedAhead:
    """A mapped profile's related files (bills: no rows for the loader, only the derived fields
    of a later file) read by a thread of the reader process while its main thread waits for
    the loader to take a batch: the loader would otherwise wait for them, with nothing to load.
    The thread reads only while the gate is open (the main thread blocked in a send or waiting
    for the thread), so it never slows the batches the loader waits for; their batches (counts
    and quarantined records: small) are kept until the loader asks for the file, in order."""

    def __init__(self, files, batch_size: int, profile: Profile, context: ReadContext | None):
        self.gate = threading.Event()  # set: the main thread is idle, the thread may read
        self.batches: dict[str, list[Batch]] = {}
        self.error: BaseException | None = None
        related = [(e, Path(p)) for e, p in files
                   if not profile.native and profile.entity_of(e) is None]
        self.done = {e: threading.Event() for e, _p in related}
        self.thread = threading.Thread(target=self._read, name="t24-related", daemon=True,
                                       args=(related, batch_size, profile, context))
        if related:
            self.thread.start()

    def _read(self, related, batch_size: int, profile: Profile, context) -> None:
        try:
            for entity, path in related:
                items = records_of(profile, entity, path, context)
                self.batches[entity] = list(file_batches(entity, path, batch_size, None,
                                                         profile, context, self._gated(items)))
                self.done[entity].set()
        except BaseException as exc:  # noqa: BLE001 - raised when the loader reaches the file
            self.error = exc
            for done in self.done.values():
                done.set()

    def _gated(self, items):
        wait = self.gate.wait
        for item in items:
            wait()
            yield item

    def take(self, entity: str) -> list[Batch] | None:
        """The file's batches, once read (None: not a related file)."""
        done = self.done.get(entity)
        if done is None:
            return None
        self.gate.set()
        done.wait()
        self.gate.clear()
        if entity in self.batches:
            return self.batches.pop(entity)
        raise self.error

    def send(self, pipe, message) -> None:
        """``pipe.send_bytes`` with the gate open while it blocks."""
        self.gate.set()
        try:
            pipe.send_bytes(message)
        finally:
            self.gate.clear()


def _child(pipe, files, batch_size: int, profile: Profile, context: ReadContext | None,
           ) -> None:
    with contextlib.suppress(Exception):  # the reader dies with the loader
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    # The related files' thread holds the GIL while the main thread's write waits for the
    # loader; each write the loader lets through costs the main thread a GIL hand-over (up to
    # the switch interval): a larger pipe means fewer writes a batch, a shorter interval
    # shorter hand-overs.
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
    sys.setswitchinterval(0.0005)
    try:
        ahead = _RelatedAhead(files, batch_size, profile, context)
        for number, (entity, path) in enumerate(files):
            # the next files' first batches are read while the previous file loads
            batches = ahead.take(entity)
            if batches is None:
                batches = file_batches(entity, Path(path), batch_size,
                                       FIRST_BATCH if number == 0 else None, profile, context)
            for batch in batches:
                ahead.send(pipe, pickle.dumps(("batch", batch), pickle.HIGHEST_PROTOCOL))
            ahead.send(pipe, pickle.dumps(("end", entity)))
    except (BrokenPipeError, ConnectionResetError):
        pass
    except BaseException as exc:  # noqa: BLE001 - handed to the loader, raised there
        try:
            message = pickle.dumps(("error", exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its text
            message = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        with contextlib.suppress(Exception):
            pipe.send_bytes(message)
    finally:
        pipe.close()
        os._exit(0)
