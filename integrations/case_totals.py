"""Case totals and priorities of the customers a bank sync touched, by the one definition
(``portal.cases.queue.recompute_case_totals`` and ``recompute_priorities``), run on the
loader's psycopg connection inside the load's transaction.

The loaders work on a plain psycopg connection (COPY, one transaction per set), not on a
SQLAlchemy session; the two services only call ``session.execute(statement[, rows])`` and read
``rowcount`` or the rows, so a tiny adapter compiles their statements for PostgreSQL and runs
them on the connection. The customers touched are in the temporary table ``sync_touched_cifs``
(``integrations.changes.touch_cifs``, and both owners of every product that changed hands); their
cases are recomputed in slices of ``MAX_CASE_IDS`` (the bound parameters of one statement).
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import Connection
from sqlalchemy.dialects import postgresql

from portal.cases.queue import recompute_case_totals, recompute_priorities

MAX_CASE_IDS = 30_000  # bound parameters of one statement stay well under 65535


class ConnectionSession:
    """Just enough of a SQLAlchemy Session for the set-based services: ``execute(statement)``
    with a ``rowcount`` and its rows, or ``execute(statement, [params, …])`` run for each."""

    dialect = postgresql.psycopg.dialect()

    def __init__(self, conn: Connection):
        self.conn = conn

    def execute(self, statement, rows: list[dict] | None = None):
        compiled = statement.compile(dialect=self.dialect,
                                     compile_kwargs={"render_postcompile": True})
        params = dict(compiled.params)
        # Python-side defaults SQLAlchemy would compute at execution (e.g. updated_at=utcnow)
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.onupdate if column in compiled.update_prefetch else column.default
            if default is not None and default.is_callable:
                params[column.key] = default.arg(None)
            elif default is not None and default.is_scalar:
                params[column.key] = default.arg
        if rows is None:
            return self.conn.execute(str(compiled), params)
        with self.conn.cursor() as cur:
            cur.executemany(str(compiled), [{**params, **row} for row in rows])
            return cur


def recompute_cases(conn: Connection, case_ids: Iterable[int] | None = None) -> int:
    """Totals, then priority, of ``case_ids`` (every case when None); returns how many cases'
    totals changed."""
    session = ConnectionSession(conn)
    if case_ids is None:
        changed = recompute_case_totals(session)
        recompute_priorities(session)
        return changed
    ids = list(case_ids)
    changed = 0
    for start in range(0, len(ids), MAX_CASE_IDS):
        part = ids[start:start + MAX_CASE_IDS]
        changed += recompute_case_totals(session, part)
        recompute_priorities(session, part)
    return changed


def recompute_totals_of_touched(conn: Connection) -> int:
    """Recompute the totals and priorities of the cases of ``sync_touched_cifs``; returns how
    many cases' totals changed."""

    exists = conn.execute("SELECT to_regclass('pg_temp.sync_touched_cifs')").fetchone()[0]
    if exists is None:
        return 0
    ids = [case_id for (case_id,) in conn.execute(
        "SELECT c.id FROM cases c JOIN sync_touched_cifs t ON t.cif = c.cif ORDER BY c.id")]
    if not ids:
        return 0
    return recompute_cases(conn, ids)
