"""Every migration downgrades (issue 24 §4, the rollback plan in docs/operations.md).

(a) On an empty database: head → base leaves nothing of ours, and base → head gives the same
    schema (columns, constraints, indexes, functions, sequences) as the first upgrade.
(b) On a database with the demo data (``flask seed-demo`` at a reduced size): from head down,
    each migration one step down and one step up again; the schema after equals the schema
    before, the rows still satisfy every constraint (PostgreSQL checks them when they come
    back), and the only tables whose rows changed are the ones the migration's downgrade is
    documented to lose (LOSES, docs/operations.md "Rollback").

These run on a database of their own (``<test database>_migrations``), never the session's.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import text

from portal import create_app
from portal.config import TestConfig
from tests.settings import service_urls

# What one step down and up again loses of the demo data: the tables whose rows differ after
# (dropped and created empty, or a column dropped and added back with its default). The same
# list, in words, is in docs/operations.md under "Rollback".
LOSES: dict[str, set[str]] = {
    "0001": set(),  # the whole schema: checked separately (nothing is left at base)
    "0002": {"integration_runs"},
    "0003": {"payments", "rejected_notifications"},
    "0004": {"call_records", "agent_status"},
    "0005": {"field_devices"},
    "0006": {"cases"},
    "0007": {"kpi_agent_daily", "kpi_portfolio_snapshots"},
    "0008": {"alerts"},
    "0010": {"payments"},
    "0014": {"product_owner_moves"},
    "0015": {"agent_locations"},
    "0016": {"integration_runs", "reconciliation_runs", "discrepancies", "integration_traffic"},
    "0017": {"promises"},
    "0018": {"call_records"},
    "0019": {"invariant_runs"},
    "0020": {"agent_locations", "rejected_locations"},
    "0021": {"camt_imports", "camt_import_transactions"},
    "0022": {"webhook_receipts"},
    "0023": {"users"},
    "0024": {"notifications"},
    "0025": {"users", "password_history"},
    "0026": {"cases", "status_values", "case_status_changes", "master_note_versions"},
    "0027": {"documents", "document_downloads"},
    "0028": {"reference_customers"},
    "0029": {"payment_plans", "plan_instalments", "plan_allocations"},
    "0030": {"agencies", "placements"},
    "0032": {"message_templates", "messages"},
    "0033": {"phones", "emails"},
    "0034": {"print_batches", "print_batch_letters"},
    "0035": {"cases", "messages", "strategies", "strategy_versions", "strategy_segments",
             "strategy_steps", "strategy_variants", "strategy_assignments",
             "integration_settings", "integration_runs", "integration_traffic",
             "rejected_notifications", "reconciliation_runs", "quarantined_records"},
    "0036": {"events", "integration_runs"},
    "0037": {"feature_flags", "feature_flag_teams"},
}

SCHEMA_QUERIES = {
    "columns": """
        SELECT table_name, column_name,
               -- the place among the live columns (a dropped column keeps its number)
               row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position),
               data_type, udt_name, is_nullable,
               column_default, character_maximum_length, numeric_precision, numeric_scale
        FROM information_schema.columns WHERE table_schema = 'public'""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prosrc, p.procost,
               p.proconfig::text
        FROM pg_proc p LEFT JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
        WHERE p.pronamespace = 'public'::regnamespace AND d.objid IS NULL""",
    "sequences": """
        SELECT sequencename, data_type::text, increment_by FROM pg_sequences
        WHERE schemaname = 'public'""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal""",
    "table_options": """
        SELECT relname, reloptions::text FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND reloptions IS NOT NULL""",
}


def schema(conn) -> dict[str, set[tuple]]:
    return {name: {tuple(row) for row in conn.execute(text(sql))}
            for name, sql in SCHEMA_QUERIES.items()}


def schema_difference(before: dict, after: dict) -> dict:
    return {name: {"missing": sorted(before[name] - after[name], key=repr),
                   "extra": sorted(after[name] - before[name], key=repr)}
            for name in before if before[name] != after[name]}


def tables(conn) -> list[str]:
    return [name for (name,) in conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'alembic_version' ORDER BY 1"))]


def digests(conn) -> dict[str, tuple[int, str]]:
    """{table: (rows, md5 of its rows)} of every table of ours."""
    out = {}
    for name in tables(conn):
        out[name] = tuple(conn.execute(text(
            f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) '
            f'FROM "{name}" t')).one())
    return out


@pytest.fixture(scope="module")
def migration_app():
    """An app on a database of its own, created empty (dropped again afterwards)."""
    url, redis_url = service_urls()
    params = conninfo_to_dict(url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"{params.get('dbname') or 'postgres'}_migrations"
    maintenance = make_conninfo(**{**params, "dbname": "postgres"})

    def recreate(drop_only: bool = False):
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop_only:
                conn.execute(f'CREATE DATABASE "{name}"')

    recreate()
    base, sep, query = url.partition("?")
    db_url = base.rsplit("/", 1)[0] + f"/{name}" + (sep + query if sep else "")
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": redis_url,
                                  "RATELIMIT_STORAGE_URI": redis_url})
    app.recreate_database = recreate
    yield app
    with app.app_context():
        from portal.extensions import db

        db.engine.dispose()
    recreate(drop_only=True)


def revisions(app) -> list[str]:
    """The revisions from base to head, in order (read from the scripts, so a new migration is
    in the test as soon as it is chained)."""
    config = app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


def reset(app) -> None:
    from portal.extensions import db

    db.engine.dispose()
    app.recreate_database()


def test_empty_database_head_to_base_to_head(migration_app):
    from portal.extensions import db

    with migration_app.app_context():
        reset(migration_app)
        upgrade()
        with db.engine.connect() as conn:
            first = schema(conn)
        assert first["columns"], "the upgrade created nothing"

        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert tables(conn) == []
            left = schema(conn)
            left["columns"] = {c for c in left["columns"] if c[0] != "alembic_version"}
            left["constraints"] = {c for c in left["constraints"] if c[0] != "alembic_version"}
            left["indexes"] = {c for c in left["indexes"] if c[0] != "alembic_version"}
            assert {k: v for k, v in left.items() if v} == {}, "base is not empty"
            types = conn.execute(text(
                "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace "
                "AND typtype IN ('e', 'd', 'c') AND typrelid = 0")).all()
            assert types == []

        upgrade()
        with db.engine.connect() as conn:
            again = schema(conn)
        assert schema_difference(first, again) == {}


def test_each_migration_down_and_up_with_demo_data(migration_app):
    from portal.extensions import db
    from portal.seed.cli import seed_demo

    started = time.perf_counter()
    with migration_app.app_context():
        reset(migration_app)
        upgrade()
        result = migration_app.test_cli_runner().invoke(
            seed_demo, ["--customers", "150", "--loans", "250"])
        assert result.exit_code == 0, result.output
        # what the demo leaves empty and a downgrade must handle: a flag on for one team
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO feature_flags (name, mode) VALUES ('strategies', "
                              "'teams')"))
            conn.execute(text("INSERT INTO feature_flag_teams (flag_name, team_id) "
                              "SELECT 'strategies', min(id) FROM teams"))
        revs = revisions(migration_app)
        assert revs[0] == "0001" and len(revs) >= 35
        # before the demo data is stepped through: the data satisfies the invariants
        from portal.ops import invariants

        results = invariants.check_all(db.session)
        db.session.rollback()
        assert [r.name for r in results if r.error or r.violations] == []
        db.session.remove()

        lost_somewhere, unexpected = set(), {}
        for position in range(len(revs) - 1, 0, -1):
            rev, previous = revs[position], revs[position - 1]
            with db.engine.connect() as conn:
                schema_before, rows_before = schema(conn), digests(conn)
            downgrade(revision=previous)
            upgrade(revision=rev)
            with db.engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
                    == rev
                assert schema_difference(schema_before, schema(conn)) == {}, rev
                rows_after = digests(conn)
            changed = {name for name in rows_before if rows_before[name] != rows_after[name]}
            if changed - LOSES.get(rev, set()):
                unexpected[rev] = sorted(changed - LOSES.get(rev, set()))
            lost_somewhere |= changed
            downgrade(revision=previous)  # and on down
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert tables(conn) == []
    # a table whose rows one step down and up changed, not listed: add it to LOSES and to
    # docs/operations.md (Rollback) if the downgrade must lose it, else fix the downgrade
    assert unexpected == {}
    # the demo data exercises the lossy downgrades: this fails if none of them was seen losing
    assert lost_somewhere
    assert time.perf_counter() - started < 180
