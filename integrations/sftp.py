"""The SFTP fetch step of T24 (production): copy the file sets T24 publishes on its SFTP server
into the local inbox, where ``integrations.t24.load.process_inbox`` picks them up.

Configuration only (``T24_SFTP_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD`` or ``_KEY_FILE``,
``_REMOTE_DIR``, ``_KNOWN_HOSTS``); the step is skipped when ``T24_SFTP_HOST`` is unset (the
sandbox and the tests drop files straight into the inbox).

- Only T24 names are fetched (``t24_<entity>_YYYYMMDD.<ext>``, ``t24_manifest_YYYYMMDD.json``),
  data files first and each date's manifest last, so that a set is complete in the inbox when
  its manifest appears; each file is written as ``name.part`` and renamed when complete.
- A file is fetched once: (name, size, mtime) of what was fetched is kept in
  ``state/sftp_fetched.jsonl`` beside the inbox's ledger; the remote files are left in place
  (T24 owns its outbox).
- The server's host key must be known (``T24_SFTP_KNOWN_HOSTS`` or the system's known_hosts):
  an unknown host is refused, never trusted on first use.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from integrations.t24.formats import parse_data_file_name, parse_manifest_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SftpSettings:
    host: str
    port: int = 22
    username: str | None = None
    password: str | None = None
    key_file: str | None = None
    remote_dir: str = "outbox"
    known_hosts: str | None = None

    @classmethod
    def from_config(cls, config) -> SftpSettings:
        return cls(host=config["T24_SFTP_HOST"], port=int(config.get("T24_SFTP_PORT") or 22),
                   username=config.get("T24_SFTP_USER"),
                   password=config.get("T24_SFTP_PASSWORD"),
                   key_file=config.get("T24_SFTP_KEY_FILE"),
                   remote_dir=config.get("T24_SFTP_REMOTE_DIR") or "outbox",
                   known_hosts=config.get("T24_SFTP_KNOWN_HOSTS"))


def connect(settings: SftpSettings):
    """An open paramiko SFTP client (and its SSH client, to close)."""
    import paramiko  # lazy: slow to import; only an SFTP source uses it

    client = paramiko.SSHClient()
    client.load_system_host_keys()
    if settings.known_hosts:
        client.load_host_keys(settings.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(settings.host, port=settings.port, username=settings.username,
                   password=settings.password, key_filename=settings.key_file,
                   timeout=30, banner_timeout=30, auth_timeout=30,
                   look_for_keys=settings.key_file is None and settings.password is None)
    return client, client.open_sftp()


def is_t24_name(name: str) -> bool:
    return parse_manifest_name(name) is not None or parse_data_file_name(name) is not None


def _order(name: str) -> tuple:
    """Data files before manifests, dates in order."""
    return (parse_manifest_name(name) is not None, name)


def _fetched(state: Path) -> set[tuple]:
    if not state.exists():
        return set()
    seen = set()
    for line in state.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        seen.add((entry["name"], entry["size"], entry["mtime"]))
    return seen


def fetch_with(sftp, remote_dir: str, inbox: Path, state: Path) -> list[str]:
    """Copy new T24 files from ``remote_dir`` on ``sftp`` (a paramiko SFTPClient or anything
    with ``listdir_attr`` and ``get``) into ``inbox``; returns the names fetched."""
    inbox.mkdir(parents=True, exist_ok=True)
    state.parent.mkdir(parents=True, exist_ok=True)
    seen = _fetched(state)
    fetched = []
    entries = [e for e in sftp.listdir_attr(remote_dir)
               if is_t24_name(e.filename) and not stat.S_ISDIR(e.st_mode or 0)]
    for entry in sorted(entries, key=lambda e: _order(e.filename)):
        identity = (entry.filename, entry.st_size, entry.st_mtime)
        if identity in seen:
            continue
        target = inbox / entry.filename
        part = target.with_name(target.name + ".part")
        sftp.get(f"{remote_dir.rstrip('/')}/{entry.filename}", str(part))
        if part.stat().st_size != entry.st_size:
            part.unlink()
            raise OSError(f"SFTP: {entry.filename} changed while it was fetched")
        os.replace(part, target)
        with state.open("a", encoding="utf-8") as fp:
            fp.write(json.dumps({"name": entry.filename, "size": entry.st_size,
                                 "mtime": entry.st_mtime}) + "\n")
        fetched.append(entry.filename)
    if fetched:
        log.info("T24 files fetched over SFTP", extra={"files": len(fetched)})
    return fetched


def fetch(settings: SftpSettings, inbox: Path) -> list[str]:
    """Connect, fetch what is new into ``inbox``, disconnect."""
    client, sftp = connect(settings)
    try:
        return fetch_with(sftp, settings.remote_dir, Path(inbox),
                          Path(inbox).parent / "state" / "sftp_fetched.jsonl")
    finally:
        sftp.close()
        client.close()
