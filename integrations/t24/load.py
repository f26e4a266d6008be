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

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from psycopg import Connection, sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb, set_json_loads

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


def _loads_decimal(data):
    return json.loads(data, parse_float=Decimal)


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


class Loader:
    def __init__(self, conn: Connection, *, business_date: date, mode: str, run_id: int,
                 batch_size: int = BATCH_SIZE, on_change: ChangeHook | None = None,
                 progress: Callable[[int], None] | None = None):
        self.conn = conn
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
        for record in read_records(path, entity):
            result.extracted += 1
            item = transform(record)
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

        changed_keys = self._upsert(entity, columns, result)
        if entity in CONTACT_OWNERS:
            contact_changed = self._contacts(entity, batch)
            result.contacts_changed += len(contact_changed)
            for key in contact_changed - changed_keys:
                result.updated += 1
                result.unchanged -= 1
                if self.on_change:
                    self.on_change(entity, key, False, {"contacts": True})
        if entity == "loans":
            self._bucket_history()
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

    def _upsert(self, entity: str, columns: list[str], result: EntityResult) -> set[str]:
        keys = list(NATURAL_KEYS[entity])
        data = [c for c in columns if c not in keys]
        sets = [sql.SQL("{c} = EXCLUDED.{c}").format(c=_ident(c)) for c in data]
        sets.append(sql.SQL("last_synced_at = EXCLUDED.last_synced_at"))
        if entity in TABLES_WITH_TIMESTAMPS:
            sets.append(sql.SQL("updated_at = now()"))
        upsert = """
                INSERT INTO {t} AS t ({cols}, last_synced_at)
                SELECT {cols}, %(now)s FROM {stg}
                ON CONFLICT ({keys}) DO UPDATE SET {sets}
                WHERE ({tdata}) IS DISTINCT FROM ({edata})"""
        if self.on_change is None:  # counts only: no before/after images to build
            template = upsert + " RETURNING {tk} AS key, (xmax = 0) AS inserted"
        else:
            template = """
            WITH old AS (
                SELECT {tk} AS key, to_jsonb(t) AS before
                FROM {t} t JOIN {stg} s USING ({keys})
            ), up AS (""" + upsert + """
                RETURNING {tk} AS key, (xmax = 0) AS inserted, to_jsonb(t) AS after
            )
            SELECT up.key, up.inserted, old.before, up.after
            FROM up LEFT JOIN old ON old.key = up.key"""
        statement = sql.SQL(template).format(
            t=_ident(entity), stg=_ident(f"stg_{entity}"), keys=_cols(keys),
            cols=_cols(columns), sets=sql.SQL(", ").join(sets),
            tk=_key_expr(entity, "t"),
            tdata=sql.SQL(", ").join(sql.SQL("t.{}").format(_ident(c)) for c in data)
            if data else sql.SQL("NULL"),
            edata=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(_ident(c)) for c in data)
            if data else sql.SQL("NULL"),
        )
        staged = self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            _ident(f"stg_{entity}"))).fetchone()[0]
        changed = set()
        cur = self.conn.cursor()
        set_json_loads(_loads_decimal, cur)  # amounts in before/after stay exact
        for key, inserted, *images in cur.execute(statement, {"now": self.now}):
            changed.add(key)
            if inserted:
                result.inserted += 1
            else:
                result.updated += 1
            if self.on_change is None:
                continue
            before, after = images
            if inserted:
                changes = {c: [None, after.get(c)] for c in columns}
            else:
                changes = {c: [before.get(c), after.get(c)] for c in columns
                           if before.get(c) != after.get(c)}
            # TODO(issue 5, events): publish CUSTOMER_UPDATED / LOAN_UPDATED /
            # COLLATERAL_UPDATED with ``changes`` here, in this same transaction (outbox), once
            # portal.events.publish is available to integrations. Until then the on_change hook
            # receives every change.
            self.on_change(entity, key, inserted, changes)
        result.unchanged += staged - len(changed)
        return changed

    def _contacts(self, entity: str, batch: dict[str, Row]) -> set[str]:
        """Reconcile T24's phones/addresses/emails of the batch's owners; owners changed."""
        owner = CONTACT_OWNERS[entity]
        owners_stg = _ident(f"stg_{entity}")
        changed: set[str] = set()
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
            statements = (
                # gone from T24 (only owners present in this batch, only T24's rows)
                "DELETE FROM {t} p WHERE p.source_system = 'T24' AND p.{o} IN "
                "(SELECT {o} FROM {owners}) AND NOT EXISTS (SELECT 1 FROM {stg} s WHERE {match}) "
                "RETURNING p.{o}",
                "UPDATE {t} p SET {sets}, last_synced_at = %(now)s, updated_at = now() "
                "FROM {stg} s WHERE p.source_system = 'T24' AND {match} "
                "AND ({pdata}) IS DISTINCT FROM ({sdata}) RETURNING p.{o}",
                "INSERT INTO {t} ({cols}, source_system, last_synced_at) "
                "SELECT {cols}, 'T24', %(now)s FROM {stg} s WHERE NOT EXISTS "
                "(SELECT 1 FROM {t} p WHERE p.source_system = 'T24' AND {match}) "
                "RETURNING {o}",
            )
            for statement in statements:
                for (key,) in self.conn.execute(sql.SQL(statement).format(**params),
                                                {"now": self.now}):
                    changed.add(key)
        return changed

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
        """Full set: open T24 loans that the loans file did not mention are closed."""
        rows = self.conn.execute("""
            UPDATE loans l SET status = 'CLOSED', close_date = coalesce(l.close_date, %(day)s),
                   last_synced_at = %(now)s, updated_at = now()
            WHERE l.source_system = 'T24' AND l.status <> 'CLOSED'
              AND NOT EXISTS (SELECT 1 FROM seen_loans s WHERE s.key = l.account_number)
            RETURNING l.account_number, l.close_date""",
                                 {"day": self.business_date, "now": self.now}).fetchall()
        for account, close_date in rows:
            result.closed += 1
            # TODO(issue 5, events): LOAN_UPDATED with changes {"status": [.., "CLOSED"]}.
            if self.on_change:
                self.on_change("loans", account, False,
                               {"status": [None, "CLOSED"], "close_date": [None,
                                                                          str(close_date)]})


def _start_run(conn: Connection, verification: Verification, trigger: str,
               triggered_by_id: int | None) -> int:
    manifest = verification.manifest
    with conn.transaction():
        return conn.execute(
            "INSERT INTO integration_runs (integration, kind, trigger, status, business_date, "
            "mode, started_at, triggered_by_id) VALUES ('T24', 'sync', %s, 'running', %s, %s, "
            "%s, %s) RETURNING id",
            (trigger, manifest.business_date if manifest else None,
             manifest.mode if manifest else None, datetime.now(UTC), triggered_by_id),
        ).fetchone()[0]


def _finish_run(conn: Connection, run_id: int, result: LoadResult, started: float,
                extracted: int, loaded: int, failed: int, control: dict,
                total_amount: Decimal | None) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE integration_runs SET status = %s, finished_at = %s, extracted = %s, "
            "loaded = %s, failed = %s, control_totals = %s, errors = %s, duration_ms = %s, "
            "total_amount = %s WHERE id = %s",
            (result.status, datetime.now(UTC), extracted, loaded, failed, Jsonb(control),
             Jsonb(result.errors) if result.errors else None,
             int((time.perf_counter() - started) * 1000), total_amount, run_id))


def load_set(conn: Connection, verification: Verification, *, trigger: str = "manual",
             triggered_by_id: int | None = None, batch_size: int = BATCH_SIZE,
             on_change: ChangeHook | None = None,
             progress: Callable[[int, int], None] | None = None) -> LoadResult:
    """Load a verified set (``manifest.verify``) on a psycopg connection. A set that did not
    verify is not loaded: the run is recorded as failed with the reasons, nothing else is
    written. Returns the counts per entity; the run row holds the same."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("load_set needs a connection with no transaction in progress")
    started = time.perf_counter()
    run_id = _start_run(conn, verification, trigger, triggered_by_id)
    result = LoadResult(run_id, "running")
    if not verification.ok:
        result.status = "failed"
        result.errors = verification.errors
        _finish_run(conn, run_id, result, started, 0, 0, 0, {"rejected": True}, None)
        return result
    manifest = verification.manifest
    total = sum(entry.records for entry in manifest.files)
    loader = Loader(conn, business_date=manifest.business_date, mode=manifest.mode,
                    run_id=run_id, batch_size=batch_size, on_change=on_change,
                    progress=(lambda done: progress(done, total)) if progress else None)
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
            # TODO(issue 5, events): publish SYNC_COMPLETED (counts, business date) here.
    except Exception as exc:
        result.status = "failed"
        result.errors = [f"{type(exc).__name__}: {exc}"[:2000]]
        _finish_run(conn, run_id, result, started, 0, 0, 0, control, None)
        raise
    quarantined = sum(e.quarantined for e in result.entities.values())
    result.status = "partial" if quarantined else "succeeded"
    extracted = sum(e.extracted for e in result.entities.values())
    loaded = sum(e.inserted + e.updated for e in result.entities.values())
    loans = result.entities.get("loans")
    total_amount = loans.totals.sums.get("outstanding") if loans else None
    _finish_run(conn, run_id, result, started, extracted, loaded, quarantined, control,
                total_amount)
    return result


def process_inbox(conn: Connection, inbox, *, trigger: str = "schedule",
                  triggered_by_id: int | None = None, include_stale: bool = False,
                  **kwargs) -> list[LoadResult | str]:
    """Deal with every complete set waiting in the inbox, oldest business date first: claim it,
    verify it against its manifest, then load it and move it to processed/, or move it whole to
    rejected/ (with reason.json) when it contradicts its manifest or was processed before.
    ``include_stale`` also re-runs sets a killed worker left in work/. Returns one LoadResult
    per loaded or rejected set ("duplicate: <set id>" for a set seen before)."""
    from integrations.t24.inbox import Inbox

    inbox = inbox if isinstance(inbox, Inbox) else Inbox(inbox)
    inbox.ensure()
    outcomes: list[LoadResult | str] = []
    claimed = inbox.stale_claims() if include_stale else []
    for pending in inbox.pending():
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
