"""Load a verified T24 file set into PostgreSQL: streaming, batched, only real changes written.

For each entity in load order, records are read and transformed one at a time and gathered in
batches (``batch_size``); each batch is

1. COPied into a temporary staging table (same column types as the target);
2. cleaned in SQL: keys already loaded from this file (duplicates) and rows whose references do
   not exist (a loan whose cif is not a customer) are removed and quarantined;
3. upserted: ``INSERT … SELECT … FROM staging ON CONFLICT (natural key) DO UPDATE … WHERE
   (columns) IS DISTINCT FROM (EXCLUDED columns)`` — an unchanged row is not written at all; the
   statement returns the rows inserted or changed, with their values before and after.

Customers' and references' phones, addresses and e-mails (T24's own rows, ``source_system =
'T24'``; what the collection team entered is never touched) are reconciled per owner: rows T24 no
longer sends are deleted, changed ones updated, new ones inserted; a customer whose contacts
changed counts as changed. Loans: the bucket is recomputed by the transform, bucket history gets
a new stay when the bucket changes, and in a **full** set loans absent from the file are closed
(status CLOSED, close_date = business date), never deleted.

Everything of one set is one transaction: a worker killed mid-load leaves nothing behind, and
the same set run again ends in the same state (unchanged rows are not rewritten). The
``integration_runs`` row is written before (status running, its own transaction) and completed
after; bad records go to ``quarantined_records`` with the run.

Memory does not grow with the file: one batch of rows, plus the keys seen so far kept in a
temporary table, not in Python.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from psycopg import Connection, sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from integrations.case_totals import recompute_totals_of_touched
from integrations.changes import (
    CHANGES_TABLE,
    change_rows,
    ensure_change_table,
    publish_changes,
    publish_one,
    touch_cifs,
    upsert_changes,
)
from integrations.t24.formats import NATURAL_KEYS
from integrations.t24.manifest import Verification
from integrations.t24.parser import read_records
from integrations.t24.transform import (
    ENTITY_FIELDS,
    ControlTotals,
    Quarantine,
    Row,
    json_safe,
    transform,
)

BATCH_SIZE = 5000


TABLES_WITH_TIMESTAMPS = {"customers", "reference_customers", "collaterals", "loans"}
# (column, referenced table, referenced column): a staged row whose value is not there is
# quarantined instead of breaking the foreign key.
REFERENCES = {
    "reference_customers": (("primary_cif", "customers", "cif"),),
    "collaterals": (("cif", "customers", "cif"),),
    "loans": (("cif", "customers", "cif"),),
    "loan_collaterals": (("account_number", "loans", "account_number"),
                         ("collateral_number", "collaterals", "collateral_number")),
}
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
# The column holding the customer a row belongs to (the cif of its events, case totals).
OWNER_COLUMNS = {"customers": "cif", "reference_customers": "primary_cif",
                 "collaterals": "cif", "loans": "cif"}


def load_columns(entity: str) -> list[str]:
    columns = [f.name for f in ENTITY_FIELDS[entity]]
    if entity == "loans":
        columns.append("bucket")
    return [*columns, "source_system"]


@dataclass
class EntityResult:
    entity: str
    extracted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    closed: int = 0
    contacts_changed: int = 0
    unreadable_keys: int = 0  # quarantined records whose key could not be read
    totals: ControlTotals | None = None

    def as_json(self) -> dict:
        return {"extracted": self.extracted, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "quarantined": self.quarantined,
                "closed": self.closed, "contacts_changed": self.contacts_changed}


@dataclass
class LoadResult:
    run_id: int
    status: str
    entities: dict[str, EntityResult] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    control_differences: dict = field(default_factory=dict)
    events: int = 0  # CUSTOMER/LOAN/COLLATERAL_UPDATED published

    @property
    def changed(self) -> int:
        return sum(e.inserted + e.updated + e.closed for e in self.entities.values())


# Called for every row inserted or changed: (entity, key, inserted, {column: [before, after]}).
ChangeHook = Callable[[str, str, bool, dict], None]


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _cols(names) -> sql.Composed:
    return sql.SQL(", ").join(map(_ident, names))


def _key_expr(entity: str, alias: str) -> sql.Composable:
    parts = [sql.SQL("{}.{}").format(_ident(alias), _ident(k)) for k in NATURAL_KEYS[entity]]
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("concat_ws('|', {})").format(sql.SQL(", ").join(parts))


_END = object()
READ_AHEAD = os.environ.get("T24_READ_AHEAD", "0") == "1"


def transformed(path, entity: str, chunk: int = BATCH_SIZE):
    """The file's records, read and transformed (``Row`` or ``Quarantine``). With
    ``T24_READ_AHEAD=1`` in a thread of their own, a chunk ahead of the caller: parsing and
    validating overlap with the database's work on the previous batch (the connection waits
    without holding the GIL); at most two chunks wait in between, so memory stays flat. Off by
    default: measured ~10% slower on a 2-core host, where the threads contend for the GIL and
    the cores (docs/performance.md)."""
    if not READ_AHEAD:
        for record in read_records(path, entity):
            yield transform(record)
        return
    chunks: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                chunks.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            items = []
            for record in read_records(path, entity):
                items.append(transform(record))
                if len(items) >= chunk:
                    if not put(items):
                        return
                    items = []
            if items:
                put(items)
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)

    worker = threading.Thread(target=produce, name=f"t24-read-{entity}", daemon=True)
    worker.start()
    try:
        while True:
            items = chunks.get()
            if items is _END:
                return
            if isinstance(items, BaseException):
                raise items
            yield from items
    finally:
        stop.set()
        worker.join(timeout=5)


class Loader:
    def __init__(self, conn: Connection, *, business_date: date, mode: str, run_id: int,
                 batch_size: int = BATCH_SIZE, on_change: ChangeHook | None = None,
                 progress: Callable[[int], None] | None = None, publish_events: bool = True,
                 correlation_id: str | None = None):
        self.conn = conn
        self.publish_events = publish_events
        self.correlation_id = correlation_id
        self.events = 0
        self.business_date = business_date
        self.mode = mode
        self.run_id = run_id
        self.batch_size = batch_size
        self.on_change = on_change
        self.progress = progress
        self.now = datetime.now(UTC)
        self.done = 0
        self.quarantine_buffer: list[tuple] = []

    # -- staging -------------------------------------------------------------------------------
    def _prepare(self, entity: str) -> None:
        columns = load_columns(entity)
        ensure_change_table(self.conn)
        self.conn.execute(sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {stg} ON COMMIT DROP AS SELECT {cols} FROM {t} "
            "WITH NO DATA").format(stg=_ident(f"stg_{entity}"), cols=_cols(columns),
                                   t=_ident(entity)))
        self.conn.execute(sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {seen} (key text PRIMARY KEY) ON COMMIT DROP"
        ).format(seen=_ident(f"seen_{entity}")))
        if entity in CONTACT_OWNERS:
            owner = CONTACT_OWNERS[entity]
            for table, (ident, data) in CONTACT_TABLES.items():
                self.conn.execute(sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {stg} ON COMMIT DROP AS SELECT {cols} "
                    "FROM {t} WITH NO DATA").format(
                        stg=_ident(f"stg_{entity}_{table}"), cols=_cols([owner, *ident, *data]),
                        t=_ident(table)))

    def _copy(self, table: str, columns: list[str], rows) -> None:
        with self.conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                _ident(table), _cols(columns))) as copy:
            for row in rows:
                copy.write_row(row)
        # statistics of what was staged: without them the planner guesses and joins badly
        self.conn.execute(sql.SQL("ANALYZE {}").format(_ident(table)))

    # -- quarantine ----------------------------------------------------------------------------
    def quarantine(self, item: Quarantine) -> None:
        self.quarantine_buffer.append((
            "T24", self.run_id, item.entity, item.record_key, item.reason[:2000],
            Jsonb(item.payload) if item.payload is not None else None, item.raw,
            item.source_file, item.line_number if item.line_number is not None
            else item.record_number))
        if len(self.quarantine_buffer) >= 1000:
            self.flush_quarantine()

    def flush_quarantine(self) -> None:
        if not self.quarantine_buffer:
            return
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO quarantined_records (integration, run_id, entity, record_key, "
                "reason, payload, raw, source_file, line_number) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", self.quarantine_buffer)
        self.quarantine_buffer.clear()

    # -- one entity ----------------------------------------------------------------------------
    def load_file(self, entity: str, path, result: EntityResult) -> None:
        self._prepare(entity)
        batch: dict[str, Row] = {}
        for item in transformed(path, entity, self.batch_size):
            result.extracted += 1
            result.totals.add(item)
            if isinstance(item, Quarantine):
                result.quarantined += 1
                self.quarantine(item)
                if not item.record_key:
                    result.unreadable_keys += 1
                elif entity == "loans":
                    self._remember_key(entity, item.record_key)  # not closed for being bad
            elif item.key in batch:
                result.quarantined += 1
                self.quarantine(Quarantine(entity, f"duplicate {entity} key {item.key!r} in "
                                           f"{item.source_file}", item.key,
                                           json_safe(item.values), None, item.source_file,
                                           None, item.record_number))
            else:
                batch[item.key] = item
            if len(batch) >= self.batch_size:
                self._load_batch(entity, batch, result)
                batch = {}
        if batch:
            self._load_batch(entity, batch, result)
        self.flush_quarantine()

    def _remember_key(self, entity: str, key: str) -> None:
        self.conn.execute(sql.SQL("INSERT INTO {} (key) VALUES (%s) ON CONFLICT DO NOTHING")
                          .format(_ident(f"seen_{entity}")), (key,))

    def _load_batch(self, entity: str, batch: dict[str, Row], result: EntityResult) -> None:
        columns = load_columns(entity)
        stg = _ident(f"stg_{entity}")
        seen = _ident(f"seen_{entity}")
        self.conn.execute(sql.SQL("TRUNCATE {}").format(stg))
        self._copy(f"stg_{entity}", columns,
                   ([row.values[c] for c in columns] for row in batch.values()))

        # Keys already loaded from this file: the first record won.
        dropped = self.conn.execute(sql.SQL(
            "DELETE FROM {stg} s USING {seen} x WHERE x.key = {k} RETURNING {k}").format(
                stg=stg, seen=seen, k=_key_expr(entity, "s"))).fetchall()
        for (key,) in dropped:
            self._reject(entity, batch.pop(key), f"duplicate {entity} key {key!r} in the file",
                         result)
        self.conn.execute(sql.SQL("INSERT INTO {seen} (key) SELECT {k} FROM {stg} s "
                                  "ON CONFLICT DO NOTHING").format(
                                      seen=seen, k=_key_expr(entity, "s"), stg=stg))
        # Referential integrity: what a row points to must exist (in this or an earlier load).
        for column, table, target in REFERENCES.get(entity, ()):
            missing = self.conn.execute(sql.SQL(
                "DELETE FROM {stg} s WHERE NOT EXISTS (SELECT 1 FROM {t} p WHERE p.{tc} = "
                "s.{c}) RETURNING {k}, s.{c}").format(
                    stg=stg, t=_ident(table), tc=_ident(target), c=_ident(column),
                    k=_key_expr(entity, "s"))).fetchall()
            for key, value in missing:
                self._reject(entity, batch.pop(key),
                             f"{column}: {value!r} is not a known {table[:-1].replace('_', ' ')}",
                             result)

        all_new = self._upsert(entity, columns, result)
        if entity in CONTACT_OWNERS:
            owners, added = self._contacts(entity, batch, all_new)
            result.contacts_changed += owners
            result.updated += added  # only their contacts changed
            result.unchanged -= added
        if entity == "loans":
            self._bucket_history()
            touch_cifs(self.conn)
        self._changes_recorded(entity)
        self.done += len(batch)
        if self.progress:
            self.progress(self.done)

    def _reject(self, entity: str, row: Row, reason: str, result: EntityResult) -> None:
        result.quarantined += 1
        result.totals.rows -= 1
        result.totals.quarantined += 1
        for name in result.totals.sums:
            result.totals.sums[name] -= row.values[name] or 0
        self.quarantine(Quarantine(entity, reason, row.key, json_safe(row.values), None,
                                   row.source_file, None, row.record_number))

    def _upsert(self, entity: str, columns: list[str], result: EntityResult) -> bool:
        """Write the staged rows that are new or really changed; they (and only they) land in
        ``sync_changes`` with their changed fields."""
        staged = self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            _ident(f"stg_{entity}"))).fetchone()[0]
        inserted, updated = upsert_changes(
            self.conn, entity, f"stg_{entity}", NATURAL_KEYS[entity], columns,
            owner=OWNER_COLUMNS.get(entity), now=self.now,
            timestamps=entity in TABLES_WITH_TIMESTAMPS)
        result.inserted += inserted
        result.updated += updated
        result.unchanged += staged - inserted - updated
        return inserted == staged  # every row of the batch is new

    def _contacts(self, entity: str, batch: dict[str, Row],
                  all_new: bool = False) -> tuple[int, int]:
        """Reconcile T24's phones/addresses/emails of the batch's owners. Owners whose contacts
        changed are added to ``sync_changes`` with, per kind, the number of T24 rows before and
        after (``{"phones": {"old": 1, "new": 2}}``; same numbers: rows changed in place); a
        customer created by this batch keeps its creation changes only. ``all_new``: every owner
        of the batch was just inserted, so none has T24 contacts yet — they are only inserted
        (an initial load skips the delete and update passes).
        Returns (owners whose contacts changed, of them not otherwise changed)."""
        owner = CONTACT_OWNERS[entity]
        owners_stg = _ident(f"stg_{entity}")
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS sync_contact_changes "
                          "(key text, tbl text, op char) ON COMMIT DROP")
        self.conn.execute("TRUNCATE sync_contact_changes")
        for table, (ident, data) in CONTACT_TABLES.items():
            stg = _ident(f"stg_{entity}_{table}")
            self.conn.execute(sql.SQL("TRUNCATE {}").format(stg))
            columns = [owner, *ident, *data]
            rows, seen = [], set()
            for row in batch.values():
                for contact in row.contacts.get(table, []):
                    identity = (contact[owner], *(contact[c] for c in ident))
                    if identity not in seen:  # the same number twice: once
                        seen.add(identity)
                        rows.append([contact[c] for c in columns])
            self._copy(f"stg_{entity}_{table}", columns, rows)
            match = sql.SQL(" AND ").join(
                sql.SQL("p.{c} = s.{c}").format(c=_ident(c)) for c in [owner, *ident])
            params = {
                "t": _ident(table), "stg": stg, "o": _ident(owner), "owners": owners_stg,
                "match": match, "cols": _cols(columns),
                "sets": sql.SQL(", ").join(sql.SQL("{c} = s.{c}").format(c=_ident(c))
                                           for c in data),
                "pdata": sql.SQL(", ").join(sql.SQL("p.{}").format(_ident(c)) for c in data),
                "sdata": sql.SQL(", ").join(sql.SQL("s.{}").format(_ident(c)) for c in data),
            }
            params["tbl"] = sql.Literal(table)
            statements = (
                # gone from T24 (only owners present in this batch, only T24's rows)
                "d", "DELETE FROM {t} p WHERE p.source_system = 'T24' AND p.{o} IN "
                "(SELECT {o} FROM {owners}) AND NOT EXISTS (SELECT 1 FROM {stg} s WHERE {match}) "
                "RETURNING p.{o}",
                "u", "UPDATE {t} p SET {sets}, last_synced_at = %(now)s, updated_at = now() "
                "FROM {stg} s WHERE p.source_system = 'T24' AND {match} "
                "AND ({pdata}) IS DISTINCT FROM ({sdata}) RETURNING p.{o}",
                "i", "INSERT INTO {t} ({cols}, source_system, last_synced_at) "
                "SELECT {cols}, 'T24', %(now)s FROM {stg} s WHERE NOT EXISTS "
                "(SELECT 1 FROM {t} p WHERE p.source_system = 'T24' AND {match}) "
                "RETURNING {o}",
            )
            if all_new:
                self.conn.execute(sql.SQL(
                    "INSERT INTO {t} ({cols}, source_system, last_synced_at) "
                    "SELECT {cols}, 'T24', %(now)s FROM {stg}").format(**params),
                    {"now": self.now})
                continue
            for op, statement in zip(statements[::2], statements[1::2], strict=True):
                self.conn.execute(sql.SQL(
                    "WITH w AS (" + statement + ") INSERT INTO sync_contact_changes "
                    "SELECT {o}, {tbl}, {op} FROM w").format(op=sql.Literal(op), **params),
                    {"now": self.now})
        if all_new:  # new owners: their creation event says it all
            return len({row.key for row in batch.values()
                        if any(row.contacts.get(t) for t in CONTACT_TABLES)}), 0
        owners = self.conn.execute(
            "SELECT count(DISTINCT key) FROM sync_contact_changes").fetchone()[0]
        if not owners:
            return 0, 0
        counts = sql.SQL(" ").join(
            sql.SQL("WHEN {name} THEN (SELECT count(*) FROM {t} p WHERE p.source_system = 'T24' "
                    "AND p.{o} = c.key)").format(name=sql.Literal(table), t=_ident(table),
                                                 o=_ident(owner))
            for table in CONTACT_TABLES)
        added = self.conn.execute(sql.SQL("""
            INSERT INTO {chg} (key, cif, inserted, changes)
            SELECT key, NULL, false,
                   jsonb_object_agg(tbl, jsonb_build_object('old', after - ins + del,
                                                            'new', after))
            FROM (SELECT c.key, c.tbl, c.ins, c.del, CASE c.tbl {counts} END AS after
                  FROM (SELECT key, tbl, count(*) FILTER (WHERE op = 'i') AS ins,
                               count(*) FILTER (WHERE op = 'd') AS del
                        FROM sync_contact_changes GROUP BY key, tbl) c) x
            GROUP BY key
            ON CONFLICT (key) DO UPDATE SET changes = CASE WHEN {chg}.inserted
                THEN {chg}.changes ELSE {chg}.changes || EXCLUDED.changes END
            RETURNING (xmax = 0)""").format(chg=_ident(CHANGES_TABLE), counts=counts)
        ).fetchall()
        if entity == "customers":
            self.conn.execute(f"UPDATE {CHANGES_TABLE} SET cif = key WHERE cif IS NULL")
        else:
            self.conn.execute(f"UPDATE {CHANGES_TABLE} c SET cif = r.primary_cif FROM "
                              "reference_customers r WHERE c.cif IS NULL AND r.ref_cif = c.key")
        return owners, sum(1 for (new,) in added if new)

    def _changes_recorded(self, entity: str) -> None:
        """The batch's changes are in ``sync_changes``: publish their events (outbox, this
        transaction) and hand them to the ``on_change`` hook."""
        if self.publish_events:
            self.events += publish_changes(
                self.conn, entity, source_system="T24", run_id=self.run_id,
                correlation_id=self.correlation_id,
                extra={"business_date": self.business_date.isoformat()})
        if self.on_change:
            for key, inserted, changes in change_rows(self.conn):
                self.on_change(entity, key, inserted, changes)

    def _bucket_history(self) -> None:
        """A new stay in loan_bucket_history for every loan of the batch whose bucket is not
        the one of its open stay (or that has none)."""
        day = self.business_date
        self.conn.execute("""
            UPDATE loan_bucket_history h SET bucket = s.bucket, dpd = s.dpd
            FROM stg_loans s
            WHERE h.account_number = s.account_number AND h.to_date IS NULL
              AND h.from_date >= %(day)s AND h.bucket <> s.bucket""", {"day": day})
        self.conn.execute("""
            UPDATE loan_bucket_history h SET to_date = %(day)s::date - 1
            FROM stg_loans s
            WHERE h.account_number = s.account_number AND h.to_date IS NULL
              AND h.from_date < %(day)s AND h.bucket <> s.bucket""", {"day": day})
        self.conn.execute("""
            INSERT INTO loan_bucket_history (account_number, bucket, dpd, from_date)
            SELECT s.account_number, s.bucket, s.dpd, %(day)s FROM stg_loans s
            WHERE NOT EXISTS (SELECT 1 FROM loan_bucket_history h
                              WHERE h.account_number = s.account_number AND h.to_date IS NULL)
        """, {"day": day})

    def close_absent_loans(self, result: EntityResult) -> None:
        """Full set: open T24 loans that the loans file did not mention are closed (a
        LOAN_UPDATED each, with the status and close date change)."""
        self.conn.execute(f"TRUNCATE {CHANGES_TABLE}")
        result.closed += self.conn.execute(f"""
            WITH closed AS (
                UPDATE loans l SET status = 'CLOSED',
                       close_date = coalesce(l.close_date, %(day)s),
                       last_synced_at = %(now)s, updated_at = now()
                FROM loans o
                WHERE o.id = l.id AND l.source_system = 'T24' AND l.status <> 'CLOSED'
                  AND NOT EXISTS (SELECT 1 FROM seen_loans s WHERE s.key = l.account_number)
                RETURNING l.account_number, l.cif, o.status AS old_status, l.close_date,
                          o.close_date AS old_close_date
            )
            INSERT INTO {CHANGES_TABLE} (key, cif, inserted, changes)
            SELECT account_number, cif, false,
                   jsonb_build_object('status', jsonb_build_object('old', old_status,
                                                                   'new', 'CLOSED'))
                   || CASE WHEN old_close_date IS DISTINCT FROM close_date THEN
                        jsonb_build_object('close_date', jsonb_build_object(
                            'old', old_close_date, 'new', close_date))
                      ELSE '{{}}'::jsonb END
            FROM closed""", {"day": self.business_date, "now": self.now}).rowcount
        touch_cifs(self.conn)
        self._changes_recorded("loans")


def _start_run(conn: Connection, verification: Verification, trigger: str,
               triggered_by_id: int | None, retry_of_id: int | None = None,
               attempt: int = 1, correlation_id: str | None = None) -> int:
    manifest = verification.manifest
    total = sum(entry.records for entry in manifest.files) if manifest else None
    with conn.transaction():
        return conn.execute(
            "INSERT INTO integration_runs (integration, kind, trigger, status, business_date, "
            "mode, started_at, triggered_by_id, retry_of_id, attempt, correlation_id, "
            "progress_done, progress_total) VALUES ('T24', 'sync', %s, 'running', %s, %s, %s, "
            "%s, %s, %s, %s, 0, %s) RETURNING id",
            (trigger, manifest.business_date if manifest else None,
             manifest.mode if manifest else None, datetime.now(UTC), triggered_by_id,
             retry_of_id, attempt, correlation_id, total),
        ).fetchone()[0]


@dataclass
class RunCounts:
    extracted: int = 0
    transformed: int = 0
    loaded: int = 0
    unchanged: int = 0
    quarantined: int = 0

    @classmethod
    def of(cls, result: LoadResult) -> RunCounts:
        entities = result.entities.values()
        quarantined = sum(e.quarantined for e in entities)
        extracted = sum(e.extracted for e in entities)
        return cls(extracted=extracted, transformed=extracted - quarantined,
                   loaded=sum(e.inserted + e.updated + e.closed for e in entities),
                   unchanged=sum(e.unchanged for e in entities), quarantined=quarantined)


def _finish_run(conn: Connection, run_id: int, result: LoadResult, started: float,
                counts: RunCounts, control: dict, total_amount: Decimal | None) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE integration_runs SET status = %s, finished_at = %s, extracted = %s, "
            "transformed = %s, loaded = %s, unchanged = %s, quarantined = %s, failed = %s, "
            "control_totals = %s, errors = %s, duration_ms = %s, total_amount = %s, "
            "progress_done = CASE WHEN %s IN ('succeeded', 'partial') THEN progress_total "
            "ELSE progress_done END WHERE id = %s",
            (result.status, datetime.now(UTC), counts.extracted, counts.transformed,
             counts.loaded, counts.unchanged, counts.quarantined, counts.quarantined,
             Jsonb(control), Jsonb(result.errors) if result.errors else None,
             int((time.perf_counter() - started) * 1000), total_amount, result.status, run_id))


def _sync_completed(conn: Connection, result: LoadResult, counts: RunCounts,
                    manifest, correlation_id: str | None) -> None:
    publish_one(conn, "SYNC_COMPLETED", {
        "run_id": result.run_id, "integration": "T24", "kind": "sync", "status": result.status,
        "business_date": manifest.business_date if manifest else None,
        "extracted": counts.extracted, "loaded": counts.loaded,
        "failed": counts.quarantined, "unchanged": counts.unchanged,
        "events": result.events, "full_refresh": bool(manifest and manifest.mode == "full"),
    }, correlation_id=correlation_id)


def _progress_writer(run_id: int, total: int, progress, progress_conn):
    if progress is None and progress_conn is None:
        return None
    last = [0.0]

    def write(done: int) -> None:
        if progress_conn is not None:
            now = time.monotonic()
            if now - last[0] >= 1.0 or done >= total:
                last[0] = now
                progress_conn.execute("UPDATE integration_runs SET progress_done = %s "
                                      "WHERE id = %s", (done, run_id))
        if progress is not None:
            progress(done, total)

    return write


def load_set(conn: Connection, verification: Verification, *, trigger: str = "manual",
             triggered_by_id: int | None = None, batch_size: int = BATCH_SIZE,
             on_change: ChangeHook | None = None,
             progress: Callable[[int, int], None] | None = None,
             publish_events: bool = True, update_cases: bool = True,
             retry_of_id: int | None = None, attempt: int = 1,
             correlation_id: str | None = None,
             progress_conn: Connection | None = None) -> LoadResult:
    """Load a verified set (``manifest.verify``) on a psycopg connection. A set that did not
    verify is not loaded: the run is recorded as failed with the reasons, nothing else is
    written (but SYNC_COMPLETED with status failed). Returns the counts per entity; the run row
    holds the same.

    ``progress_conn`` (a second autocommit connection): the run row's ``progress_done`` is
    written on it while the load runs (at most once a second), for the ops page.

    In the data's transaction: CUSTOMER_UPDATED / LOAN_UPDATED / COLLATERAL_UPDATED for every
    row inserted or really changed (``publish_events``), the case totals of the customers whose
    loans changed (``update_cases``), and SYNC_COMPLETED."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("load_set needs a connection with no transaction in progress")
    started = time.perf_counter()
    run_id = _start_run(conn, verification, trigger, triggered_by_id, retry_of_id, attempt,
                        correlation_id)
    result = LoadResult(run_id, "running")
    if not verification.ok:
        result.status = "failed"
        result.errors = verification.errors
        with conn.transaction():
            _sync_completed(conn, result, RunCounts(), verification.manifest, correlation_id)
        _finish_run(conn, run_id, result, started, RunCounts(), {"rejected": True}, None)
        return result
    manifest = verification.manifest
    total = sum(entry.records for entry in manifest.files)
    loader = Loader(conn, business_date=manifest.business_date, mode=manifest.mode,
                    run_id=run_id, batch_size=batch_size, on_change=on_change,
                    progress=_progress_writer(run_id, total, progress, progress_conn),
                    publish_events=publish_events, correlation_id=correlation_id)
    control: dict = {"mode": manifest.mode, "entities": {}}
    try:
        with conn.transaction():
            for entry, path in verification.files():
                entity_result = EntityResult(entry.entity, totals=ControlTotals(entry.entity))
                result.entities[entry.entity] = entity_result
                loader.load_file(entry.entity, path, entity_result)
                if entry.entity == "loans" and manifest.mode == "full":
                    if entity_result.unreadable_keys:
                        # A loan we could not read is not absent: closing would be a guess.
                        result.errors.append(
                            f"absent loans not closed: {entity_result.unreadable_keys} loan "
                            f"records without a readable account number")
                    else:
                        loader.close_absent_loans(entity_result)
                differences = entity_result.totals.compare(entry.control_totals)
                if differences:
                    result.control_differences[entry.entity] = differences
                control["entities"][entry.entity] = {
                    **entity_result.as_json(), "manifest_records": entry.records,
                    "manifest_totals": {k: str(v) for k, v in entry.control_totals.items()},
                    "loaded_totals": {k: str(v) for k, v in
                                      entity_result.totals.sums.items()},
                    "differences": differences,
                }
            if update_cases:
                control["cases_updated"] = recompute_totals_of_touched(conn)
            result.events = loader.events
            control["events"] = loader.events
            counts = RunCounts.of(result)
            result.status = "partial" if counts.quarantined else "succeeded"
            _sync_completed(conn, result, counts, manifest, correlation_id)
    except BaseException as exc:
        result.status = "failed"
        result.errors = [f"{type(exc).__name__}: {exc}"[:2000]]
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            _finish_run(conn, run_id, result, started, RunCounts(), control, None)
        raise
    loans = result.entities.get("loans")
    total_amount = loans.totals.sums.get("outstanding") if loans else None
    _finish_run(conn, run_id, result, started, counts, control, total_amount)
    return result


def process_inbox(conn: Connection, inbox, *, trigger: str = "schedule",
                  triggered_by_id: int | None = None, include_stale: bool = False,
                  business_date: date | None = None,
                  **kwargs) -> list[LoadResult | str]:
    """Deal with every complete set waiting in the inbox, oldest business date first: claim it,
    verify it against its manifest, then load it and move it to processed/, or move it whole to
    rejected/ (with reason.json) when it contradicts its manifest or was processed before.
    ``include_stale`` also re-runs sets a killed worker left in work/; ``business_date`` limits
    the run to that date's sets. Returns one LoadResult per loaded or rejected set
    ("duplicate: <set id>" for a set seen before)."""
    from integrations.t24.inbox import Inbox

    inbox = inbox if isinstance(inbox, Inbox) else Inbox(inbox)
    inbox.ensure()
    outcomes: list[LoadResult | str] = []
    claimed = inbox.stale_claims() if include_stale else []
    if business_date is not None:
        claimed = [s for s in claimed if s.business_date == business_date]
    for pending in inbox.pending():
        if business_date is not None and pending.business_date != business_date:
            continue
        taken = inbox.claim(pending)
        if taken is not None:
            claimed.append(taken)
    for file_set in claimed:
        if inbox.already_processed(file_set):
            inbox.mark_rejected(file_set, ["this set (name and sha256) was processed before"],
                                duplicate=True)
            outcomes.append(f"duplicate: {file_set.set_id}")
            continue
        verification = verify_set(file_set)
        result = load_set(conn, verification, trigger=trigger,
                          triggered_by_id=triggered_by_id, **kwargs)
        if verification.ok:
            inbox.mark_processed(file_set)
        else:
            inbox.mark_rejected(file_set, verification.errors)
        outcomes.append(result)
    return outcomes


def verify_set(file_set) -> Verification:
    from integrations.t24.manifest import verify

    return verify(file_set.manifest_path)
