"""Case totals of the customers a bank sync touched, by the one definition
(``portal.cases.queue.recompute_case_totals``), run on the loader's psycopg connection inside
the load's transaction.

The loaders work on a plain psycopg connection (COPY, one transaction per set), not on a
SQLAlchemy session; ``recompute_case_totals`` only calls ``session.execute(statement)`` and reads
``rowcount``, so a tiny adapter compiles its statements for PostgreSQL and runs them on the
connection. The customers touched are in the temporary table ``sync_touched_cifs``
(``integrations.changes.touch_cifs``); their case ids are passed on. When more cases were touched
than one statement can bind, every case is recomputed (one set-based UPDATE either way).
"""

from __future__ import annotations

from psycopg import Connection
from sqlalchemy.dialects import postgresql

from portal.cases.queue import recompute_case_totals

MAX_CASE_IDS = 30_000  # bound parameters of one statement stay well under 65535


class ConnectionSession:
    """Just enough of a SQLAlchemy Session for the set-based services: ``execute(statement)``
    with a ``rowcount``."""

    dialect = postgresql.psycopg.dialect()

    def __init__(self, conn: Connection):
        self.conn = conn

    def execute(self, statement):
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
        return self.conn.execute(str(compiled), params)


def recompute_totals_of_touched(conn: Connection) -> int:
    """Recompute the totals of the cases of ``sync_touched_cifs``; returns how many changed."""

    exists = conn.execute("SELECT to_regclass('pg_temp.sync_touched_cifs')").fetchone()[0]
    if exists is None:
        return 0
    ids = [case_id for (case_id,) in conn.execute(
        "SELECT c.id FROM cases c JOIN sync_touched_cifs t ON t.cif = c.cif")]
    if not ids:
        return 0
    session = ConnectionSession(conn)
    return recompute_case_totals(session, None if len(ids) > MAX_CASE_IDS else ids)
