"""Backups and their restore (issue 24 §3, docs/operations.md "Backup and restore").

A backup is one directory ``backup-<UTC stamp>`` under ``BACKUP_DIR``:

    manifest.json        what the backup holds and how to check it (below)
    database.dump        the database, ``pg_dump --format=custom``
    files/documents/…    the document store (DOCUMENT_STORAGE_DIR, default <instance>/documents)
    files/print/…        the letters' print batches (PRINT_BATCH_DIR, default <instance>/print)

The manifest names every other file with its size and sha256, the database's Alembic revision,
the server's version, the pg_dump used, the app's version and when it was taken (product
clock). It is written last, into a hidden ``.partial-`` directory that is renamed into place when
complete: a backup directory either has a manifest that matches it or is not a backup.

``restore`` checks everything before it touches anything: the manifest's every file (present,
size, checksum, no file the manifest does not name), the revision (one this code's migrations
know), the target database (reachable and empty), the target instance directories (empty or
absent) and the client tools (matching the target server). Then pg_restore runs in one
transaction (a failure leaves the target empty) and the files are copied.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from portal import clock
from portal.vault import pgtools
from portal.vault.pgtools import CopyRefused

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
PREFIX = "backup-"
PARTIAL = ".partial-"
CHUNK = 1024 * 1024
SKIPPED_FILES = (".incoming-",)  # a document upload still streaming in
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_NAME = re.compile(r"^backup-\d{8}T\d{6}Z(-\d+)?$")


@dataclass(frozen=True)
class Areas:
    """The instance directories a backup carries, by the name they have inside it."""

    documents: Path
    print: Path

    def items(self) -> list[tuple[str, Path]]:
        return [("documents", self.documents), ("print", self.print)]

    @classmethod
    def of_app(cls, app) -> Areas:
        instance = Path(app.instance_path)
        return cls(Path(app.config.get("DOCUMENT_STORAGE_DIR") or instance / "documents"),
                   Path(app.config.get("PRINT_BATCH_DIR") or instance / "print"))

    @classmethod
    def under(cls, instance_dir: Path) -> Areas:
        return cls(instance_dir / "documents", instance_dir / "print")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def app_version() -> str:
    try:
        from importlib.metadata import version

        return version("collection-crm")
    except Exception:  # noqa: BLE001 — not installed as a distribution: read pyproject.toml
        text = (MIGRATIONS_DIR.parent / "pyproject.toml").read_text(encoding="utf-8")
        match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
        return match.group(1) if match else "unknown"


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}


def database_revision(url: str) -> str | None:
    with pgtools.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


# --- taking a backup ------------------------------------------------------------------------


def _new_name(root: Path, now: datetime) -> str:
    base = f"{PREFIX}{now:%Y%m%dT%H%M%SZ}"
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def take(database_url: str, areas: Areas, root: Path) -> Path:
    """Write a backup of ``database_url`` and the ``areas`` under ``root``; its directory."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = clock.now()
    major = pgtools.server_major(database_url)
    tools = pgtools.tools_for(major)
    name = _new_name(root, now)
    work = root / f"{PARTIAL}{name}"
    work.mkdir(mode=0o700)  # every customer's personal data in clear: the portal's user only
    try:
        revision = database_revision(database_url)
        pgtools.run([tools.pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                     "--file", str(work / DUMP)], database_url, "pg_dump")
        files_root = work / "files"
        for area, source in areas.items():
            if source.is_dir():
                shutil.copytree(source, files_root / area, copy_function=shutil.copy2,
                                ignore=lambda _d, names: [n for n in names
                                                          if n.startswith(SKIPPED_FILES)])
        entries = []
        for path in sorted(p for p in work.rglob("*") if p.is_file()):
            rel = path.relative_to(work).as_posix()
            entries.append({"path": rel, "size": path.stat().st_size,
                            "sha256": sha256_of(path)})
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "alembic_revision": revision,
            "server_version": pgtools.server_version(database_url),
            "pg_dump_major": tools.major,
            "database": pgtools.describe(database_url),
            "app_version": app_version(),
            "files": entries,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        final = root / name
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("backup taken", extra={"backup": str(final), "files": len(entries),
                                    "bytes": sum(e["size"] for e in entries),
                                    "revision": revision})
    return final


# --- checking one ---------------------------------------------------------------------------


def verify(path: Path) -> dict:
    """The manifest of the backup at ``path`` when every file matches it; refused otherwise
    (the message names the first file that does not)."""
    if not path.is_dir():
        raise CopyRefused(f"{path} is not a backup directory")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CopyRefused(f"{path} has no {MANIFEST}: not a complete backup") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise CopyRefused(f"{path / MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CopyRefused(f"{path / MANIFEST}: unknown manifest format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else '?'!r}")
    listed: dict[str, dict] = {}
    for entry in manifest.get("files") or []:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if (not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel
                or any(part in ("", ".", "..") for part in rel.split("/"))
                or rel == MANIFEST or rel in listed):
            raise CopyRefused(f"{path / MANIFEST}: invalid file entry {entry!r}")
        listed[rel] = entry
    if DUMP not in listed:
        raise CopyRefused(f"{path / MANIFEST} does not list {DUMP}")
    present = {p.relative_to(path).as_posix() for p in path.rglob("*")
               if p.is_file() or p.is_symlink()}
    extra = sorted(present - set(listed) - {MANIFEST})
    if extra:
        raise CopyRefused(f"{path} holds files its manifest does not list: "
                          f"{', '.join(extra[:5])}")
    for rel, entry in listed.items():
        file = path / rel
        if file.is_symlink() or not file.is_file():
            raise CopyRefused(f"{file} is missing (listed in the manifest)")
        size = file.stat().st_size
        if size != entry.get("size"):
            raise CopyRefused(f"{file}: size {size} bytes, the manifest says "
                              f"{entry.get('size')}: the backup is corrupted")
        if sha256_of(file) != entry.get("sha256"):
            raise CopyRefused(f"{file}: sha256 does not match the manifest: the backup is "
                              "corrupted")
    revision = manifest.get("alembic_revision")
    if revision not in known_revisions():
        raise CopyRefused(f"the backup's database revision {revision!r} is not one this "
                          "code's migrations know (restore it with the version of the portal "
                          "that took it)")
    return manifest


# --- restoring it ---------------------------------------------------------------------------


def _require_empty_dirs(areas: Areas) -> None:
    for _area, target in areas.items():
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise CopyRefused(f"the instance directory {target} is not empty; restore into a "
                              "new instance directory")


def restore(path: Path, target_url: str, areas: Areas) -> dict:
    """Restore the backup at ``path`` into the empty database ``target_url`` and the empty
    ``areas``; every check runs before anything is written. Returns the manifest."""
    manifest = verify(path)
    pgtools.require_empty(target_url)
    _require_empty_dirs(areas)
    major = pgtools.server_major(target_url)
    if major < int(manifest.get("pg_dump_major") or 0):
        raise CopyRefused(f"the backup was dumped by PostgreSQL {manifest['pg_dump_major']}; "
                          f"the target server is {major}: restore into a server at least as new")
    tools = pgtools.tools_for(major)
    pgtools.run([tools.pg_restore, "--no-owner", "--no-privileges", "--single-transaction",
                 "--exit-on-error", "--dbname", pgtools.params(target_url).get("dbname", ""),
                 str(path / DUMP)], target_url, "pg_restore")
    for area, target in areas.items():
        source = path / "files" / area
        if source.is_dir():
            shutil.copytree(source, target, copy_function=shutil.copy2, dirs_exist_ok=True)
    log.info("backup restored", extra={"backup": str(path), "target": pgtools.describe(
        target_url), "revision": manifest.get("alembic_revision")})
    return manifest


# --- retention ------------------------------------------------------------------------------


def backups_in(root: Path) -> list[tuple[Path, datetime]]:
    """The complete backups under ``root`` (named as this module names them, with a readable
    manifest), oldest first."""
    found = []
    if not root.is_dir():
        return found
    for path in root.iterdir():
        if not (path.is_dir() and _NAME.match(path.name)):
            continue
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            found.append((path, datetime.fromisoformat(manifest["created_at"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda item: item[1])


def prune(root: Path, keep_days: int, keep_count: int, now: datetime | None = None,
          keep: Path | None = None) -> list[Path]:
    """Remove the backups older than ``keep_days`` beyond the newest ``keep_count`` (never
    ``keep``, the one just taken), and partial directories older than a day; the removed."""
    now = now or clock.now()
    backups = backups_in(root)
    newest = {p for p, _ in backups[-keep_count:]} if keep_count > 0 else set()
    removed = []
    for path, created in backups:
        if path in newest or path == keep or created >= now - timedelta(days=keep_days):
            continue
        shutil.rmtree(path)
        removed.append(path)
    for path in root.glob(f"{PARTIAL}*") if root.is_dir() else []:
        if path.is_dir() and path.stat().st_mtime < (now - timedelta(days=1)).timestamp():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def root_of(app) -> Path:
    """Where the app's backups go: BACKUP_DIR, else ``backups`` under the instance dir."""
    return Path(app.config.get("BACKUP_DIR") or os.path.join(app.instance_path, "backups"))


@dataclass(frozen=True)
class BackupsSeen:
    """What the ops page says of the backups: the newest (newest first) and whether the newest
    is recent enough (``stale_after`` hours; none at all counts as stale)."""
    newest: list[dict]
    count: int
    stale: bool


def seen(root: Path, stale_after_hours: float, now: datetime | None = None,
         limit: int = 5) -> BackupsSeen:
    """The complete backups under ``root`` as the ops page lists them: name, taken at, bytes,
    files and revision of the newest ``limit``, read from their manifests (not re-hashed)."""
    now = now or clock.now()
    found = backups_in(root)
    newest = []
    for path, created in reversed(found[-limit:]):
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files = manifest.get("files") or []
        newest.append({"name": path.name, "created_at": created,
                       "bytes": sum(int(f.get("size") or 0) for f in files),
                       "files": len(files), "revision": manifest.get("alembic_revision")})
    stale = not found or found[-1][1] < now - timedelta(hours=stale_after_hours)
    return BackupsSeen(newest, len(found), stale)


def scheduled(app) -> dict:
    """The scheduled job's work: a backup into BACKUP_DIR, then the retention."""
    root = root_of(app)
    path = take(app.config["SQLALCHEMY_DATABASE_URI"], Areas.of_app(app), root)
    removed = prune(root, int(app.config["BACKUP_KEEP_DAYS"]),
                    int(app.config["BACKUP_KEEP_COUNT"]), keep=path)
    return {"backup": str(path), "removed": [str(p) for p in removed]}
