"""Emptying the test database between tests: only the tables that hold rows.

TRUNCATE of all 41 tables cost 0.19 s per test (a new file for every table and index). A test
writes a handful of tables, so teardown asks which tables hold a row (one query), DELETEs those
children first, and restarts the sequences they own, which leaves the database as TRUNCATE ...
RESTART IDENTITY did for what the next test can see.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import text

# Tables the migrations fill (the default dictionaries): kept as the migrations left them. A copy
# made after the migrations (``keep_seeded_rows``, in the schema SEED_SCHEMA, out of the models'
# sight) puts them back after a test that changed them.
SEEDED_TABLES = ("status_values",)
SEED_SCHEMA = "test_seed"

# A table with more rows than this (a bulk load's) is cheaper to TRUNCATE than to DELETE.
DELETE_LIMIT = 5_000


@cache
def _owned_sequences(engine) -> dict[str, tuple[str, ...]]:
    """{table: sequences it owns (serial / identity columns)} read once per engine."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT t.relname, s.relname FROM pg_depend d "
            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public' "
            "WHERE d.deptype IN ('a', 'i')")).all()
    owned: dict[str, list[str]] = {}
    for table, sequence in rows:
        owned.setdefault(table, []).append(sequence)
    return {table: tuple(seqs) for table, seqs in owned.items()}


def row_counts(conn, tables: list[str]) -> dict[str, int]:
    """{table: rows, counted up to DELETE_LIMIT + 1} of the tables holding any, in one query."""
    query = " UNION ALL ".join(
        f"SELECT '{name}', count(*) FROM (SELECT 1 FROM \"{name}\" LIMIT {DELETE_LIMIT + 1}) x"
        for name in tables)
    return {name: rows for name, rows in conn.execute(text(query)) if rows}


def keep_seeded_rows(engine) -> None:
    """Copy the rows the migrations put in ``SEEDED_TABLES`` aside (once, after them)."""
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SEED_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SEED_SCHEMA}"))
        for name in SEEDED_TABLES:
            conn.execute(text(f'CREATE TABLE {SEED_SCHEMA}."{name}" AS TABLE "{name}"'))


def _seeded_changed(conn) -> set[str]:
    """The seeded tables whose rows differ from the copy kept after the migrations."""
    def digest(table: str) -> str:
        return f"(SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) FROM {table} t)"

    changed = set()
    for name in SEEDED_TABLES:
        if conn.execute(text(f'SELECT {digest(name)} IS DISTINCT FROM '
                             f'{digest(SEED_SCHEMA + "." + name)}')).scalar():
            changed.add(name)
    return changed


def _restore_seeded(conn, names, owned) -> None:
    for name in names:
        conn.execute(text(f'INSERT INTO "{name}" SELECT * FROM {SEED_SCHEMA}."{name}"'))
        for seq in owned.get(name, ()):
            conn.execute(text(f"SELECT setval('\"{seq}\"', "
                              f'(SELECT coalesce(max(id), 0) + 1 FROM "{name}"), false)'))


def empty_tables(engine, metadata) -> list[str]:
    """Empty every table of ``metadata`` that holds a row and restart its sequences; returns the
    tables that were emptied. A table the migrations fill gets its rows back when a test
    changed them."""
    ordered = [t.name for t in metadata.sorted_tables]  # parents before children
    owned = _owned_sequences(engine)
    with engine.begin() as conn:
        counts = row_counts(conn, ordered)
        changed = _seeded_changed(conn)
        dirty = [name for name in ordered
                 if name in counts and (name not in SEEDED_TABLES or name in changed)]
        if not dirty and not changed:
            return []
        if max(counts.values()) > DELETE_LIMIT:
            # TRUNCATE ... CASCADE also empties every table that refers to these: all of them
            # appear in ``dirty`` or are already empty.
            names = ", ".join(f'"{name}"' for name in dirty)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            _restore_seeded(conn, changed, owned)
            return dirty
        for name in reversed(dirty):  # children before parents
            conn.execute(text(f'DELETE FROM "{name}"'))
        sequences = [seq for name in dirty if name not in SEEDED_TABLES
                     for seq in owned.get(name, ())]
        for seq in sequences:
            conn.execute(text(f'ALTER SEQUENCE "{seq}" RESTART'))
        _restore_seeded(conn, changed, owned)
    return dirty
