"""The document store: a directory (``DOCUMENT_STORAGE_DIR``, default <instance>/documents)
holding each document's bytes under a generated key ("ab/<32 hex>", from a random UUID), never
under a name a person sent.

``receive`` copies an upload into a temporary file of the store while counting and hashing it,
and stops at the size limit (nothing more is read); ``place`` renames the checked file to its
key (atomic on one file system: a document's file is either whole or absent); ``discard``
removes a placed file whose row could not be written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from flask import current_app

CHUNK = 64 * 1024
TEMP_PREFIX = ".incoming-"


def root() -> str:
    """The store's directory (made on first use)."""
    configured = current_app.config.get("DOCUMENT_STORAGE_DIR") or os.path.join(
        current_app.instance_path, "documents")
    os.makedirs(configured, exist_ok=True)
    return configured


def path_of(key: str) -> str:
    return os.path.join(root(), *key.split("/"))


@dataclass
class Received:
    """An upload copied into a temporary file: its first bytes, size and sha256; ``too_large``
    when it went past the limit (the copy stopped there)."""

    temp_path: str
    head: bytes
    size: int
    sha256: str
    too_large: bool

    def drop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)


def receive(stream: BinaryIO, max_bytes: int, head_bytes: int) -> Received:
    """Copy ``stream`` into a temporary file of the store, reading at most ``max_bytes`` + 1."""
    fd, temp_path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=root())
    digest = hashlib.sha256()
    size, head, too_large = 0, b"", False
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stream.read(min(CHUNK, max_bytes + 1 - size))
                if not chunk:
                    break
                if len(head) < head_bytes:
                    head += chunk[:head_bytes - len(head)]
                size += len(chunk)
                if size > max_bytes:
                    too_large = True
                    break
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(temp_path)
        raise
    return Received(temp_path, head, size, digest.hexdigest(), too_large)


def new_key() -> str:
    name = uuid.uuid4().hex
    return f"{name[:2]}/{name}"


def place(received: Received, key: str) -> str:
    """Move a received file to ``key`` (atomic rename inside the store); its path."""
    target = path_of(key)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.chmod(received.temp_path, 0o640)
    os.replace(received.temp_path, target)
    return target


def discard(key: str) -> None:
    """Remove the file of ``key`` (its row was not written)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path_of(key))


def file_size(key: str) -> int | None:
    """The stored file's size, None when it is missing."""
    try:
        return os.stat(path_of(key)).st_size
    except FileNotFoundError:
        return None
