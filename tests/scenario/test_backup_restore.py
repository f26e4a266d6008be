"""A backup taken in the middle of the day-in-the-life scenario (tests/scenario/harness.py: after
the payments, while the field day and the night are still to come) restores into a new,
empty database and instance directory, and ``flask check invariants`` — run as a separate
process against the restored database, on the backup's clock — reports 0 violations."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from portal import clock
from portal.ops import invariants as check_invariants
from portal.vault import backup, pgtools
from tests.scenario.sizes import FAULT_DAY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restored_db(app):
    base = app.config["SQLALCHEMY_DATABASE_URI"]
    name = pgtools.params(base)["dbname"] + "_restored"
    admin = pgtools.libpq_url(base).rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pgtools.libpq_url(base).rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_taken_during_the_day_restores_with_every_invariant(
        day_factory, app, restored_db, tmp_path):
    taken: dict = {}

    def take_backup(day) -> None:
        areas = backup.Areas.of_app(day.app)
        (areas.documents / "dd").mkdir(parents=True, exist_ok=True)
        (areas.documents / "dd" / ("e" * 32)).write_bytes(b"%PDF-1.4 receipt of the day\n")
        result = day.app.test_cli_runner().invoke(
            args=["ops", "backup", "--to", str(tmp_path / "backups")])
        assert result.exit_code == 0, result.output
        taken["at"] = clock.now()
        taken["counts"] = {t: day.sql(f'SELECT count(*) FROM "{t}"').scalar()
                           for t in ("payments", "actions", "promises", "events", "cases")}
        day.db.session.rollback()

    day = day_factory(FAULT_DAY).run({"after_payments": take_backup})
    assert day.record.promises  # the day went on after the backup
    (path,) = (tmp_path / "backups").iterdir()

    result = app.test_cli_runner().invoke(args=[
        "ops", "restore", str(path), "--target", restored_db,
        "--instance-dir", str(tmp_path / "restored-instance")])
    assert result.exit_code == 0, result.output
    with pgtools.connect(restored_db) as conn:
        for table, n in taken["counts"].items():
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == n, table
    assert (tmp_path / "restored-instance" / "documents" / "dd" / ("e" * 32)).read_bytes() \
        == b"%PDF-1.4 receipt of the day\n"

    # the product's own truth check, its own process, on the restored database at the
    # backup's instant (the product's clock offset: crm_now() and clock.now() agree)
    offset = (taken["at"] - datetime.now(UTC)).total_seconds()
    env = {**os.environ, "DATABASE_URL": restored_db, "REDIS_URL": app.config["REDIS_URL"],
           "CRM_CLOCK_OFFSET_SECONDS": str(offset), "PORTAL_ENV": "development",
           "LOG_LEVEL": "WARNING"}
    check = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "check",
                            "invariants", "--no-record"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.rstrip().endswith(
        f"0 violation(s) in {len(check_invariants.INVARIANTS)} invariant(s)"), check.stdout
    (Path(backup.Areas.of_app(app).documents) / "dd" / ("e" * 32)).unlink(missing_ok=True)
