"""The SFTP fetch step into the T24 inbox, against an in-memory stand-in for paramiko's
SFTPClient: only T24 names, data files before manifests, each file once, ``.part`` then rename;
skipped when not configured."""

from __future__ import annotations

import stat
from types import SimpleNamespace

from integrations.sftp import SftpSettings, fetch_with
from integrations.sync import fetch_sftp


class FakeSftp:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.got: list[str] = []

    def listdir_attr(self, path):
        return [SimpleNamespace(filename=name, st_size=len(data), st_mtime=1700000000,
                                st_mode=stat.S_IFREG) for name, data in self.files.items()]

    def get(self, remote, local):
        name = remote.rsplit("/", 1)[1]
        self.got.append(name)
        with open(local, "wb") as fp:
            fp.write(self.files[name])


FILES = {
    "t24_manifest_20261124.json": b"{}",
    "t24_loans_20261124.jsonl": b"{}\n",
    "t24_customers_20261124.xml": b"<T24Export/>",
    "notes.txt": b"not ours",
}


def test_fetches_t24_files_once_manifest_last(tmp_path):
    sftp = FakeSftp(dict(FILES))
    inbox, state = tmp_path / "inbox", tmp_path / "state" / "sftp.jsonl"
    fetched = fetch_with(sftp, "outbox", inbox, state)
    assert fetched[-1] == "t24_manifest_20261124.json" and len(fetched) == 3
    assert sorted(p.name for p in inbox.iterdir()) == sorted(fetched)  # no .part left
    assert (inbox / "t24_loans_20261124.jsonl").read_bytes() == b"{}\n"
    assert fetch_with(sftp, "outbox", inbox, state) == []  # fetched once
    sftp.files["t24_loans_20261124.jsonl"] = b"{}\n{}\n"  # a resend: other size
    assert fetch_with(sftp, "outbox", inbox, state) == ["t24_loans_20261124.jsonl"]


def test_skipped_when_not_configured(tmp_path):
    app = SimpleNamespace(config={"T24_SFTP_HOST": None})
    assert fetch_sftp(app, tmp_path) == []
    settings = SftpSettings.from_config({"T24_SFTP_HOST": "sftp.bank", "T24_SFTP_PORT": "2222"})
    assert settings.port == 2222 and settings.remote_dir == "outbox"
