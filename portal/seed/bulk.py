"""Bulk loading with psycopg 3 COPY: rows are tuples in the order of the columns given.

Ids are assigned in Python (from the table's current maximum), so rows that reference each other
can be generated before anything is written; ``fix_sequences`` moves each id sequence past them.

COPY runs on a background thread while the next slice of rows is generated (the server checks
and indexes one slice while Python builds the next). Copies keep their order, so a row is always
written after the rows it references. Anything else on the connection goes through
``execute``/``executemany``, which wait for the copies in flight first.

Where the database role may (superuser), foreign-key triggers are switched off for the
transaction (``session_replication_role = replica``, as pg_restore does) and every foreign key
of the loaded tables is then verified at once with ``verify_foreign_keys``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Sequence

from psycopg import Connection, errors, sql
from sqlalchemy import MetaData

_DONE = object()


class BulkWriter:
    def __init__(self, conn: Connection):
        self.conn = conn
        self._next_id: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, float] = {}  # time spent copying, per table
        self.triggers_off = False
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None  # started by the first copy

    # -- ids ---------------------------------------------------------------------------------
    def prime(self, tables: Iterable[str]) -> None:
        """Read the current largest id of ``tables`` (before any copy is in flight)."""
        for table in tables:
            if table not in self._next_id:
                query = sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(
                    sql.Identifier(table))
                self._next_id[table] = self.execute(query).fetchone()[0] + 1

    def ids(self, table: str, n: int) -> range:
        """Reserve ``n`` consecutive ids of ``table``."""
        self.prime((table,))
        start = self._next_id[table]
        self._next_id[table] = start + n
        return range(start, start + n)

    def next_id(self, table: str) -> int:
        start = self._next_id[table] if table in self._next_id else self.ids(table, 0).start
        self._next_id[table] = start + 1
        return start

    # -- statements --------------------------------------------------------------------------
    def execute(self, query, params=None):
        self.flush()
        return self.conn.execute(query, params)

    def executemany(self, query, params_seq) -> None:
        self.flush()
        with self.conn.cursor() as cur:
            cur.executemany(query, params_seq)

    def disable_fk_triggers(self) -> bool:
        """Switch foreign-key triggers off for this transaction, if the role may."""
        self.flush()
        if self.conn.autocommit:  # SET LOCAL would end with the statement
            return False
        self.conn.execute("SELECT 1")  # be inside the transaction, so the next is a savepoint
        try:
            with self.conn.transaction():  # a savepoint: a refusal leaves the transaction usable
                self.conn.execute("SET LOCAL session_replication_role = replica")
        except errors.InsufficientPrivilege:
            return False
        self.triggers_off = True
        return True

    def verify_foreign_keys(self, metadata: MetaData) -> None:
        """Raise if any loaded row references a row that does not exist."""
        self.flush()
        for table in metadata.sorted_tables:
            if not self.counts.get(table.name):
                continue
            for fk in table.foreign_key_constraints:
                parent = fk.referred_table
                pairs = [(e.parent.name, e.column.name) for e in fk.elements]
                child_cols = sql.SQL(" AND ").join(
                    sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c, _ in pairs)
                match = sql.SQL(" AND ").join(
                    sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
                    for c, p in pairs)
                query = sql.SQL(
                    "SELECT count(*) FROM {child} c WHERE {cols} AND NOT EXISTS "
                    "(SELECT 1 FROM {parent} p WHERE {match})"
                ).format(child=sql.Identifier(table.name), cols=child_cols,
                         parent=sql.Identifier(parent.name), match=match)
                missing = self.conn.execute(query).fetchone()[0]
                if missing:
                    raise RuntimeError(f"{missing} rows of {table.name} break foreign key "
                                       f"{fk.name} to {parent.name}")

    # -- copies --------------------------------------------------------------------------------
    def copy(self, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> int:
        """Queue ``rows`` for COPY into ``table``; returns how many."""
        self._raise_pending()
        self.counts[table] = self.counts.get(table, 0) + len(rows)
        if rows:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="seed-copy",
                                                daemon=True)
                self._thread.start()
            self._queue.put((table, tuple(columns), rows))
        return len(rows)

    def flush(self) -> None:
        """Wait until every queued copy is written."""
        self._queue.join()
        self._raise_pending()

    def close(self) -> None:
        """Stop the copy thread (after the copies queued so far)."""
        if self._thread is not None:
            self._queue.put(_DONE)
            self._thread.join()
            self._thread = None

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _DONE:
                    return
                if self._error is None:
                    self._copy(*item)
            except BaseException as exc:  # handed to the main thread
                self._error = exc
            finally:
                self._queue.task_done()

    def _copy(self, table: str, columns: tuple[str, ...], rows: Sequence[Sequence]) -> None:
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        started = time.perf_counter()
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        self.seconds[table] = self.seconds.get(table, 0.0) + time.perf_counter() - started

    def fix_sequences(self) -> None:
        """Move the id sequence of every table we assigned ids to past the largest id."""
        for table in self._next_id:
            self.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, 'id'), max(id)) FROM {i} "
                    "HAVING max(id) IS NOT NULL"
                ).format(t=sql.Literal(table), i=sql.Identifier(table))
            )
