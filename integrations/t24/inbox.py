"""The T24 inbox directory: where file sets arrive, and where they go once dealt with.

Layout under the root directory given to :class:`Inbox` (the sync job is to read it from
configuration, e.g. ``T24_INBOX_DIR``; not wired yet)::

    inbox/                      files arrive here (production: the SFTP fetch writes here)
    work/<set id>/              a set claimed by a worker (moved atomically out of inbox/)
    processed/<YYYYMMDD>/<set id>/   loaded
    rejected/<YYYYMMDD>/<set id>/    refused whole, with reason.json beside the files
    state/ledger.jsonl          one line per file dealt with: name, sha256, outcome, set, at

A set is the manifest ``t24_manifest_YYYYMMDD.json`` and the files it lists; it is only picked
up once its manifest is there (the sender writes the manifest last). Its id is
``YYYYMMDD-<first 12 hex of the manifest's sha256>``.

Processed once: a file is identified by name + sha256. A set whose manifest (name, sha256) is in
the ledger as processed is not loaded again; it is moved to ``rejected/`` as a duplicate. A new
manifest for the same date (a corrected resend) has another checksum and is processed.

Claiming is a ``rename`` of the set's files into ``work/`` (atomic on one filesystem): of two
workers, the one whose rename of the manifest succeeds owns the set. A set left in ``work/``
(a worker killed mid-load) is returned by :meth:`Inbox.stale_claims` so it can be run again — the
loader is idempotent.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from integrations.t24.formats import parse_data_file_name, parse_manifest_name
from integrations.t24.manifest import Manifest, ManifestError, sha256_file
from portal import clock

OUTCOMES = ("processed", "rejected", "duplicate")


@dataclass
class FileSet:
    """A business date's files, wherever they are right now."""

    business_date: date
    manifest_path: Path
    manifest_sha256: str
    files: list[Path] = field(default_factory=list)  # data files (manifest excluded)

    @property
    def set_id(self) -> str:
        return f"{self.business_date:%Y%m%d}-{self.manifest_sha256[:12]}"

    @property
    def directory(self) -> Path:
        return self.manifest_path.parent

    @property
    def all_files(self) -> list[Path]:
        return [self.manifest_path, *self.files]


class Inbox:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.inbox = self.root / "inbox"
        self.work = self.root / "work"
        self.processed = self.root / "processed"
        self.rejected = self.root / "rejected"
        self.state = self.root / "state"
        self.ledger_path = self.state / "ledger.jsonl"

    def ensure(self) -> Inbox:
        for directory in (self.inbox, self.work, self.processed, self.rejected, self.state):
            directory.mkdir(parents=True, exist_ok=True)
        return self

    # -- ledger --------------------------------------------------------------------------------
    def _ledger_lines(self) -> Iterator[dict]:
        if not self.ledger_path.exists():
            return
        with self.ledger_path.open(encoding="utf-8") as fp:
            for line in fp:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a torn last line of a crashed writer

    def outcome(self, name: str, sha256: str) -> str | None:
        """The last recorded outcome of a file (name + sha256), or None if never dealt with."""
        found = None
        for entry in self._ledger_lines():
            if entry.get("name") == name and entry.get("sha256") == sha256:
                found = entry.get("outcome")
        return found

    def record(self, file_set: FileSet, outcome: str, reason: str | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        self.state.mkdir(parents=True, exist_ok=True)
        at = clock.running_now().isoformat()
        lines = []
        for path in file_set.all_files:
            sha = (file_set.manifest_sha256 if path == file_set.manifest_path
                   else (sha256_file(path)[0] if path.exists() else None))
            lines.append(json.dumps({"name": path.name, "sha256": sha, "outcome": outcome,
                                     "set": file_set.set_id, "reason": reason, "at": at}))
        with self.ledger_path.open("a", encoding="utf-8") as fp:
            fcntl.flock(fp, fcntl.LOCK_EX)
            try:
                fp.write("\n".join(lines) + "\n")
                fp.flush()
                os.fsync(fp.fileno())
            finally:
                fcntl.flock(fp, fcntl.LOCK_UN)

    # -- discovery and claiming ----------------------------------------------------------------
    def pending(self) -> list[FileSet]:
        """Complete sets waiting in inbox/ (manifest present), oldest business date first."""
        sets = []
        if not self.inbox.is_dir():
            return sets
        for path in sorted(self.inbox.iterdir()):
            day = parse_manifest_name(path.name)
            if day is None or not path.is_file():
                continue
            sets.append(self._file_set(path, day))
        return sorted(sets, key=lambda s: (s.business_date, s.manifest_path.name))

    def _file_set(self, manifest_path: Path, day: date) -> FileSet:
        sha, _ = sha256_file(manifest_path)
        try:
            names = [entry.name for entry in Manifest.load(manifest_path).files]
        except ManifestError:
            # Unreadable: the set is its manifest plus the data files of the same date.
            names = [p.name for p in manifest_path.parent.iterdir()
                     if (parsed := parse_data_file_name(p.name)) and parsed[1] == day]
        files = [manifest_path.parent / name for name in names]
        return FileSet(day, manifest_path, sha, files)

    def claim(self, file_set: FileSet) -> FileSet | None:
        """Move the set into work/<set id>/; None if another worker claimed it first."""
        target = self.work / file_set.set_id
        target.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(file_set.manifest_path, target / file_set.manifest_path.name)
        except FileNotFoundError:
            return None  # someone else won
        moved = []
        for path in file_set.files:
            if path.exists():
                os.rename(path, target / path.name)
            moved.append(target / path.name)  # a missing file stays missing: verify says so
        return FileSet(file_set.business_date, target / file_set.manifest_path.name,
                       file_set.manifest_sha256, moved)

    def stale_claims(self) -> list[FileSet]:
        """Sets left in work/ (their worker died); to be run again."""
        sets = []
        if not self.work.is_dir():
            return sets
        for directory in sorted(self.work.iterdir()):
            for path in directory.glob("t24_manifest_*.json"):
                day = parse_manifest_name(path.name)
                if day is not None:
                    sets.append(self._file_set(path, day))
        return sets

    def already_processed(self, file_set: FileSet) -> bool:
        return self.outcome(file_set.manifest_path.name,
                            file_set.manifest_sha256) == "processed"

    # -- finishing -----------------------------------------------------------------------------
    def _move_set(self, file_set: FileSet, base: Path) -> Path:
        target = base / f"{file_set.business_date:%Y%m%d}" / file_set.set_id
        if target.exists():  # the same set dealt with before: keep both
            target = target.with_name(f"{target.name}-{clock.running_now():%H%M%S%f}")
        target.mkdir(parents=True)
        for path in file_set.all_files:
            if path.exists():
                shutil.move(str(path), target / path.name)
        source_dir = file_set.directory
        if source_dir.parent == self.work:
            shutil.rmtree(source_dir, ignore_errors=True)
        return target

    def mark_processed(self, file_set: FileSet) -> Path:
        self.record(file_set, "processed")
        return self._move_set(file_set, self.processed)

    def mark_rejected(self, file_set: FileSet, errors: list[str],
                      duplicate: bool = False) -> Path:
        """Move the set to rejected/ with a reason.json; nothing of it is loaded."""
        reason = "; ".join(errors)[:2000]
        self.record(file_set, "duplicate" if duplicate else "rejected", reason)
        target = self._move_set(file_set, self.rejected)
        (target / "reason.json").write_text(json.dumps(
            {"set": file_set.set_id, "business_date": file_set.business_date.isoformat(),
             "duplicate": duplicate, "errors": errors,
             "rejected_at": clock.running_now().isoformat()}, indent=2) + "\n", encoding="utf-8")
        return target
