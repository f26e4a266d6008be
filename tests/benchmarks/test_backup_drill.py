"""The full backup drill (issue 24 §3): a demo database of 10,000 customers / 20,000 products
and 400 document files of 64 KB (reduced; 50,000 / 100,000 and 2,000 files with --full) is
backed up with ``flask ops backup``, checked and restored with ``flask ops restore`` into a new
database and instance directory; then a masked copy (``flask ops mask-copy``) of the same
database. Each time is set against a baseline measured in the same run on the same data:
plain ``pg_dump -Fc`` plus a ``cp -r`` of the files (backup), plain ``pg_restore`` into an
empty database plus ``cp -r`` (restore), ``pg_dump -Fc | pg_restore`` (masked copy). Figures
into docs/performance.md, "Backup and restore drill"."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from portal.vault import backup, pgtools
from tests.benchmarks.sizing import bench_size
from tests.benchmarks.summary import write_detail

pytestmark = pytest.mark.benchmark

CUSTOMERS = bench_size(10_000, 50_000, "BENCH_BACKUP_CUSTOMERS")
PRODUCTS = bench_size(20_000, 100_000, "BENCH_BACKUP_PRODUCTS")
FILES = bench_size(400, 2_000, "BENCH_BACKUP_FILES")
FILE_BYTES = 64 * 1024


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.fixture
def databases(app):
    base = app.config["SQLALCHEMY_DATABASE_URI"]
    own = pgtools.params(base)["dbname"]
    admin = pgtools.libpq_url(base).rsplit("/", 1)[0] + "/postgres"
    names = [f"{own}_{s}" for s in ("drill_restore", "drill_base", "drill_mask", "drill_mbase")]

    def reset():
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')

    reset()
    yield [pgtools.libpq_url(base).rsplit("/", 1)[0] + f"/{n}" for n in names]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_restore_and_masked_copy_drill(app, db, databases, tmp_path, bench_report):
    restore_url, base_url, mask_url, mask_base_url = databases
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--customers", str(CUSTOMERS),
                               "--loans", str(PRODUCTS)]).exit_code == 0
    db.session.rollback()
    areas = backup.Areas.of_app(app)
    files_root = areas.documents / "drill"
    for n in range(FILES):
        path = files_root / f"{n:032x}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(FILE_BYTES))
    source = app.config["SQLALCHEMY_DATABASE_URI"]
    tools = pgtools.tools_for(pgtools.server_major(source))
    with pgtools.connect(source) as conn:
        db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        rows = conn.execute("SELECT sum(n_live_tup) FROM pg_stat_user_tables").fetchone()[0]

    try:
        # backup: flask ops backup vs pg_dump -Fc + cp -r
        result = {}
        t_backup = _timed(lambda: result.update(r=runner.invoke(
            args=["ops", "backup", "--to", str(tmp_path / "bk")])))
        assert result["r"].exit_code == 0, result["r"].output
        (path,) = (tmp_path / "bk").iterdir()
        plain = tmp_path / "plain"
        plain.mkdir()
        t_plain_dump = _timed(lambda: pgtools.run(
            [tools.pg_dump, "--format=custom", "--no-owner", "--no-privileges", "--file",
             str(plain / "db.dump")], source, "pg_dump"))
        t_plain_cp = _timed(lambda: subprocess.run(
            ["cp", "-r", str(areas.documents), str(plain / "documents")], check=True))
        t_verify = _timed(lambda: backup.verify(path))

        # restore: flask ops restore vs pg_restore + cp -r
        t_restore = _timed(lambda: result.update(r=runner.invoke(args=[
            "ops", "restore", str(path), "--target", restore_url,
            "--instance-dir", str(tmp_path / "restored")])))
        assert result["r"].exit_code == 0, result["r"].output
        t_plain_restore = _timed(lambda: pgtools.run(
            [tools.pg_restore, "--no-owner", "--no-privileges", "--single-transaction",
             "--exit-on-error", "--dbname", pgtools.params(base_url)["dbname"],
             str(plain / "db.dump")], base_url, "pg_restore"))
        t_plain_restore_cp = _timed(lambda: subprocess.run(
            ["cp", "-r", str(plain / "documents"), str(tmp_path / "plain-restored")],
            check=True))
        with pgtools.connect(restore_url) as a, pgtools.connect(source) as b:
            query = "SELECT count(*), sum(outstanding) FROM loans"
            assert a.execute(query).fetchone() == b.execute(query).fetchone()

        # masked copy vs pg_dump | pg_restore of the whole database
        t_mask = _timed(lambda: result.update(r=runner.invoke(
            args=["ops", "mask-copy", "--target", mask_url])))
        assert result["r"].exit_code == 0, result["r"].output
        t_mask_base = _timed(lambda: subprocess.run(
            f"{tools.pg_dump} --format=custom --no-owner | {tools.pg_restore} --no-owner "
            f"--dbname {pgtools.params(mask_base_url)['dbname']}", shell=True, check=True,
            env={**pgtools.environment(source)}))
    finally:
        shutil.rmtree(files_root, ignore_errors=True)

    dump_bytes = (path / "database.dump").stat().st_size
    files_bytes = _size(path / "files")
    base_backup = t_plain_dump + t_plain_cp
    base_restore = t_plain_restore + t_plain_restore_cp
    size = f"{CUSTOMERS:,} customers / {PRODUCTS:,} products, {FILES} files"
    bench_report.record(f"ops backup ({size})", t_backup, "s", baseline=base_backup,
                        baseline_label="pg_dump -Fc + cp -r", target="≤ 1.5× the baseline",
                        met=t_backup <= 1.5 * base_backup,
                        notes="sha256 of every file and the manifest on top of the copy")
    bench_report.record(f"ops restore ({size})", t_restore, "s", baseline=base_restore,
                        baseline_label="pg_restore + cp -r", target="≤ 1.5× the baseline",
                        met=t_restore <= 1.5 * base_restore,
                        notes="the whole manifest is checked before pg_restore starts")
    bench_report.record(f"ops mask-copy ({CUSTOMERS:,} customers)", t_mask, "s",
                        baseline=t_mask_base, baseline_label="pg_dump | pg_restore",
                        notes="every row goes through Python (pseudonyms, occurrence search)")
    mb = 1024 * 1024
    write_detail("backup-drill", "Backup and restore drill (issue 24)", [
        "",
        f"`tests/benchmarks/test_backup_drill.py`, {size} of {FILE_BYTES // 1024} KB "
        f"({rows:,} rows; database {db_bytes / mb:,.0f} MB on disk). Every baseline is "
        "measured in the same run on the same data.",
        "",
        "| step | time | baseline | baseline time | ratio |",
        "|---|---:|---:|---:|---:|",
        f"| `flask ops backup` | {t_backup:.1f} s | pg_dump -Fc + cp -r | "
        f"{base_backup:.1f} s | {t_backup / base_backup:.2f} |",
        f"| manifest check alone (`backup.verify`) | {t_verify:.1f} s | pg_dump -Fc + cp -r | "
        f"{base_backup:.1f} s | {t_verify / base_backup:.2f} |",
        f"| `flask ops restore` (checks + pg_restore + files) | {t_restore:.1f} s | "
        f"pg_restore + cp -r | {base_restore:.1f} s | {t_restore / base_restore:.2f} |",
        f"| `flask ops mask-copy` | {t_mask:.1f} s | pg_dump \\| pg_restore | "
        f"{t_mask_base:.1f} s | {t_mask / t_mask_base:.2f} |",
        "",
        f"Sizes: the dump {dump_bytes / mb:,.1f} MB (custom format, compressed: "
        f"{dump_bytes / db_bytes:.2f} of the database on disk), the files "
        f"{files_bytes / mb:,.1f} MB, the manifest lists {FILES + 1} files.",
        "",
    ])
    print(f"\nbackup {t_backup:.1f}s (base {base_backup:.1f}s), restore {t_restore:.1f}s "
          f"(base {base_restore:.1f}s), mask-copy {t_mask:.1f}s (base {t_mask_base:.1f}s), "
          f"dump {dump_bytes / mb:.1f} MB")
