"""The manifest of a T24 business date, and its verification before anything is loaded.

``t24_manifest_YYYYMMDD.json``::

    {
      "system": "T24", "version": 1, "business_date": "2026-11-24", "mode": "full",
      "generated_at": "2026-11-24T19:05:00Z",
      "files": [
        {"entity": "loans", "name": "t24_loans_20261124.jsonl", "format": "jsonl",
         "records": 3000, "bytes": 1834112, "sha256": "9f86d0…",
         "control_totals": {"original_amount": "…", "outstanding": "…", "due_amount": "…"}},
        …
      ]
    }

:func:`verify` checks every listed file against the manifest — present, same size, same sha256,
same number of records (read through with the streaming parser, which also proves the file is
well-formed) — without writing anything. Any contradiction rejects the whole set: the files
reference each other (loans → customers) and a full-mode load closes loans that are absent, so a
partial set must never be loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import jsonschema

from integrations.t24.formats import (
    MANIFEST_VERSION,
    MODES,
    SYSTEM,
    T24FormatError,
    format_of,
    parse_data_file_name,
    parse_manifest_name,
)
from integrations.t24.mapping import Profile, default_profile

MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["system", "version", "business_date", "mode", "files"],
    "properties": {
        "system": {"const": SYSTEM},
        "version": {"const": MANIFEST_VERSION},
        "business_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "mode": {"enum": list(MODES)},
        "generated_at": {"type": "string"},
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["entity", "name", "records", "sha256"],
                "properties": {
                    # an entity (crm-json) or a mapping profile's source name
                    "entity": {"type": "string", "pattern": "^[a-z][a-z_]*$"},
                    "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+$"},
                    "format": {"enum": ["jsonl", "json", "xml", "csv"]},
                    "records": {"type": "integer", "minimum": 0},
                    "bytes": {"type": "integer", "minimum": 0},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "control_totals": {
                        "type": "object",
                        "additionalProperties": {"type": "string",
                                                 "pattern": r"^-?\d+(\.\d+)?$"},
                    },
                },
            },
        },
    },
}


class ManifestError(ValueError):
    """A manifest that cannot be read or is not a valid manifest."""


@dataclass
class FileEntry:
    entity: str
    name: str
    records: int
    sha256: str
    format: str = ""
    bytes: int | None = None
    control_totals: dict[str, Decimal] = field(default_factory=dict)

    def to_json(self) -> dict:
        data = {"entity": self.entity, "name": self.name, "format": self.format or
                format_of(self.name), "records": self.records}
        if self.bytes is not None:
            data["bytes"] = self.bytes
        data["sha256"] = self.sha256
        if self.control_totals:
            data["control_totals"] = {k: str(v) for k, v in self.control_totals.items()}
        return data


@dataclass
class Manifest:
    business_date: date
    mode: str
    files: list[FileEntry]
    generated_at: datetime | None = None
    path: Path | None = None

    def entry(self, entity: str) -> FileEntry | None:
        return next((f for f in self.files if f.entity == entity), None)

    def to_json(self) -> dict:
        data = {"system": SYSTEM, "version": MANIFEST_VERSION,
                "business_date": self.business_date.isoformat(), "mode": self.mode}
        if self.generated_at is not None:
            data["generated_at"] = self.generated_at.isoformat().replace("+00:00", "Z")
        data["files"] = [f.to_json() for f in self.files]
        return data

    def write(self, path: Path) -> Path:
        """Write atomically (a temporary name, then rename): a manifest is never half there."""
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path.name}: cannot read manifest: {exc}") from exc
        try:
            jsonschema.validate(data, MANIFEST_SCHEMA)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "manifest"
            raise ManifestError(f"{path.name}: invalid manifest at {where}: {exc.message}") \
                from exc
        try:
            business_date = date.fromisoformat(data["business_date"])
        except ValueError:
            raise ManifestError(f"{path.name}: business_date {data['business_date']!r} is not "
                                "a date") from None
        named = parse_manifest_name(path.name)
        if named is not None and named != business_date:
            raise ManifestError(f"{path.name}: business_date {business_date} contradicts the "
                                f"file name")
        files, seen = [], set()
        for item in data["files"]:
            entity, name = item["entity"], item["name"]
            if entity in seen:
                raise ManifestError(f"{path.name}: entity {entity!r} listed twice")
            seen.add(entity)
            parsed = parse_data_file_name(name)
            if parsed is None or parsed[0] != entity or parsed[1] != business_date:
                raise ManifestError(f"{path.name}: file name {name!r} does not match entity "
                                    f"{entity!r} and business date {business_date}")
            fmt = item.get("format") or parsed[2]
            if fmt != parsed[2]:
                raise ManifestError(f"{path.name}: {name!r} declared as {fmt!r}")
            files.append(FileEntry(
                entity=entity, name=name, records=item["records"], sha256=item["sha256"],
                format=fmt, bytes=item.get("bytes"),
                control_totals={k: Decimal(v) for k, v in
                                item.get("control_totals", {}).items()},
            ))
        generated = data.get("generated_at")
        generated_at = None
        if generated:
            try:
                generated_at = datetime.fromisoformat(generated.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ManifestError(f"{path.name}: generated_at is not a timestamp") from exc
        return cls(business_date=business_date, mode=data["mode"], files=files,
                   generated_at=generated_at, path=path)


def sha256_file(path: str | Path) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fp:
        while chunk := fp.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass
class FileCheck:
    entry: FileEntry
    path: Path
    problems: list[str] = field(default_factory=list)
    sha256: str | None = None
    bytes: int | None = None
    records: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Verification:
    """The outcome of checking a business date's files against its manifest."""

    manifest: Manifest | None
    manifest_path: Path
    checks: list[FileCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # set-level problems
    profile: Profile = field(default_factory=default_profile)  # how the files are read
    counted: bool = True  # False: the record counts are still to be checked (count_records)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.checks)

    @property
    def errors(self) -> list[str]:
        out = list(self.problems)
        for check in self.checks:
            out.extend(f"{check.entry.name}: {p}" for p in check.problems)
        return out

    def count_records(self) -> None:
        """The last check, a read of every file: its records, as many as the manifest says.
        ``load_set`` makes it while its reader has started on the files (``verify(…,
        count=False)``): the two reads then run side by side."""
        for check in self.checks:
            if not check.ok or check.records is not None:
                continue
            try:
                check.records = self.profile.count_records(check.path, check.entry.entity)
            except T24FormatError as exc:
                check.problems.append(f"unreadable: {exc.reason}" +
                                      (f" (line {exc.line})" if exc.line else ""))
                continue
            if check.records != check.entry.records:
                check.problems.append(f"{check.records} records, manifest says "
                                      f"{check.entry.records}")
        self.counted = True

    def files(self) -> list[tuple[FileEntry, Path]]:
        """The set's files in load order (entities referenced by others first, related
        records before the records derived from them: the profile's order)."""
        order = {source: i for i, source in enumerate(self.profile.sources)}
        return [(c.entry, c.path) for c in sorted(self.checks,
                                                    key=lambda c: order[c.entry.entity])]


def verify(manifest_path: str | Path, *, count: bool = True,
           profile: Profile | None = None) -> Verification:
    """Check every file of the manifest; nothing is written. ``count=False`` leaves the record
    count (a second read of each file) to ``Verification.count_records`` (``load_set`` makes
    it while its reader starts). ``profile``: the mapping
    the files are read with (default crm-json); a file of a source it does not know is a
    problem of the set."""
    manifest_path = Path(manifest_path)
    profile = profile or default_profile()
    try:
        manifest = Manifest.load(manifest_path)
    except ManifestError as exc:
        return Verification(None, manifest_path, problems=[str(exc)], profile=profile)
    result = Verification(manifest, manifest_path, profile=profile)
    if not manifest.files:
        result.problems.append("the manifest lists no files")
    unknown = [f.entity for f in manifest.files if f.entity not in profile.sources]
    if unknown:
        result.problems.append(
            f"file(s) of {', '.join(map(repr, unknown))}: not a source of the mapping profile "
            f"{profile.name!r} ({', '.join(profile.sources)})")
        return result
    directory = manifest_path.parent
    result.counted = False
    for entry in manifest.files:
        path = directory / entry.name
        check = FileCheck(entry, path)
        result.checks.append(check)
        if not path.is_file():
            check.problems.append("listed in the manifest but missing")
            continue
        check.sha256, check.bytes = sha256_file(path)
        if entry.bytes is not None and check.bytes != entry.bytes:
            check.problems.append(f"size {check.bytes} bytes, manifest says {entry.bytes}")
        if check.sha256 != entry.sha256:
            check.problems.append(f"sha256 {check.sha256} does not match the manifest's "
                                  f"{entry.sha256}")
            continue  # the content is not what was sent: no point reading it
        if count:
            try:
                check.records = profile.count_records(path, entry.entity)
            except T24FormatError as exc:
                check.problems.append(f"unreadable: {exc.reason}" +
                                      (f" (line {exc.line})" if exc.line else ""))
                continue
            if check.records != entry.records:
                check.problems.append(f"{check.records} records, manifest says "
                                      f"{entry.records}")
    return result
