"""The inbox directory: a set is claimed once, then processed or rejected, and never loaded
twice (name + sha256 in the ledger)."""

from __future__ import annotations

import json
import shutil
from datetime import date

import pytest

from integrations.sandbox.t24_files import SeedSource, T24Faults, generate_day
from integrations.t24.inbox import Inbox
from integrations.t24.manifest import verify

BASE = date(2026, 11, 24)


@pytest.fixture(scope="module")
def source():
    return SeedSource(30, 45, business_date=BASE)


@pytest.fixture
def inbox(tmp_path):
    return Inbox(tmp_path / "t24").ensure()


def test_a_set_is_pending_only_once_its_manifest_is_there(inbox, source, tmp_path):
    staging = tmp_path / "staging"
    manifest_path = generate_day(staging, source)
    for path in staging.iterdir():
        if path != manifest_path:
            shutil.copy(path, inbox.inbox / path.name)
    assert inbox.pending() == []
    shutil.copy(manifest_path, inbox.inbox / manifest_path.name)
    (pending,) = inbox.pending()
    assert pending.business_date == BASE
    assert len(pending.files) == 5 and pending.set_id.startswith("20261124-")


def test_claim_process_and_never_again(inbox, source, tmp_path):
    sent = tmp_path / "sent"
    generate_day(sent, source)
    for path in sent.iterdir():
        shutil.copy(path, inbox.inbox / path.name)
    (pending,) = inbox.pending()
    claimed = inbox.claim(pending)
    assert claimed.directory == inbox.work / pending.set_id
    assert inbox.claim(pending) is None  # a second worker loses the race
    assert inbox.pending() == [] and list(inbox.inbox.iterdir()) == []
    assert verify(claimed.manifest_path).ok
    assert inbox.stale_claims()[0].set_id == claimed.set_id  # until it is finished
    target = inbox.mark_processed(claimed)
    assert target.parent == inbox.processed / "20261124"
    assert len(list(target.iterdir())) == 6
    assert inbox.stale_claims() == [] and list(inbox.work.iterdir()) == []

    # T24 sends the very same set again (the same bytes): recognised by name + sha256.
    for path in sent.iterdir():
        shutil.copy(path, inbox.inbox / path.name)
    (resent,) = inbox.pending()
    assert inbox.already_processed(resent)
    for path in resent.all_files:
        assert inbox.outcome(path.name, _sha(path)) == "processed"


def _sha(path):
    from integrations.t24.manifest import sha256_file

    return sha256_file(path)[0]


def test_a_corrected_resend_is_a_new_set(inbox, source):
    generate_day(inbox.inbox, source)
    first = inbox.claim(inbox.pending()[0])
    inbox.mark_processed(first)
    generate_day(inbox.inbox, source, fmt="xml")  # same date, other content
    (second,) = inbox.pending()
    assert second.set_id != first.set_id
    assert not inbox.already_processed(second)


def test_a_rejected_set_goes_whole_to_rejected_with_its_reason(inbox, source):
    generate_day(inbox.inbox, source, faults=T24Faults(bad_checksum=("loans",)))
    claimed = inbox.claim(inbox.pending()[0])
    result = verify(claimed.manifest_path)
    assert not result.ok
    target = inbox.mark_rejected(claimed, result.errors)
    assert target.parent == inbox.rejected / "20261124"
    reason = json.loads((target / "reason.json").read_text())
    assert "t24_loans_20261124.jsonl" in reason["errors"][0]
    assert len(list(target.glob("t24_*"))) == 6
    assert inbox.outcome(claimed.manifest_path.name, claimed.manifest_sha256) == "rejected"


def test_a_set_with_an_unreadable_manifest_still_moves_as_a_whole(inbox, source):
    generate_day(inbox.inbox, source)
    manifest = next(inbox.inbox.glob("t24_manifest_*"))
    manifest.write_text("{broken", encoding="utf-8")
    (pending,) = inbox.pending()
    assert len(pending.files) == 5  # found by business date in the names
    claimed = inbox.claim(pending)
    inbox.mark_rejected(claimed, verify(claimed.manifest_path).errors)
    assert list(inbox.inbox.iterdir()) == []


def test_a_torn_ledger_line_is_ignored(inbox, source):
    generate_day(inbox.inbox, source)
    claimed = inbox.claim(inbox.pending()[0])
    inbox.mark_processed(claimed)
    with inbox.ledger_path.open("a") as fp:
        fp.write('{"name": "t24_manif')
    assert inbox.outcome(claimed.manifest_path.name, claimed.manifest_sha256) == "processed"
