"""One definition of an integration run's counts (``integration_runs``), the same for every kind
of run: every record a run received is counted exactly once.

    extracted   = transformed + quarantined     received = valid + held back with a reason
    transformed = loaded + unchanged + failed   valid = written + already so + not written

=============  ==============  ===================================================================
column         on the run page what it counts
=============  ==============  ===================================================================
extracted      Extracted       records the run received: read from the source (a sync), listed
                               in the source's report (a reconciliation), taken from the backlog
                               (a forward)
quarantined    Quarantined     held back with a reason: one ``quarantined_records`` row each
transformed    Valid           ``extracted - quarantined``
loaded         Loaded          valid records written: inserted or changed, ingested, sent
unchanged      Unchanged       valid records already so: up to date, already held, matched
failed         Failed          valid records not written: an error, an open discrepancy, a batch
                               the other system refused (they are tried again)
=============  ==============  ===================================================================

What is not a received record is not in these counts but in the run's control totals (loans a
full T24 refresh closed because the file no longer lists them; CRM payments the payment
system's report does not list; the backlog before and after a forward). When a run fails, the
records it read in the transaction that failed are its failed ones (a W4 / LOS page, a GPS
batch); a T24 set, loaded in one transaction, counts nothing when it fails.

Writers build a :class:`RunCounts` and store :meth:`RunCounts.columns`; :data:`INCONSISTENT_SQL`
finds the finished runs whose stored counts break the definition (``flask check invariants``,
and the tests of every kind of run).
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = ("extracted", "transformed", "loaded", "unchanged", "quarantined", "failed")


@dataclass(frozen=True)
class RunCounts:
    extracted: int = 0
    quarantined: int = 0
    loaded: int = 0
    unchanged: int = 0
    failed: int = 0

    @property
    def transformed(self) -> int:
        """Valid: received and not held back."""
        return self.extracted - self.quarantined

    @classmethod
    def rest_failed(cls, *, extracted: int, quarantined: int = 0, loaded: int = 0,
                    unchanged: int = 0) -> RunCounts:
        """The counts of a run whose received records that were neither quarantined, loaded
        nor unchanged all failed (e.g. a page read, then refused by the database)."""
        return cls(extracted, quarantined, loaded, unchanged,
                   max(0, extracted - quarantined - loaded - unchanged))

    def problems(self) -> list[str]:
        """What breaks the definition (empty: consistent)."""
        found = [f"{name} is negative" for name in COLUMNS if getattr(self, name) < 0]
        if self.loaded + self.unchanged + self.failed != self.transformed:
            found.append(f"loaded {self.loaded} + unchanged {self.unchanged} + failed "
                         f"{self.failed} is not valid {self.transformed} (extracted "
                         f"{self.extracted} - quarantined {self.quarantined})")
        return found

    def columns(self) -> dict[str, int]:
        """The six ``integration_runs`` columns."""
        return {name: getattr(self, name) for name in COLUMNS}


def of_reconciliation(received: int, ingested: int, gaps) -> RunCounts:
    """A reconciliation run's counts over the transactions of the source's report (payments,
    calls): loaded = ingested (missing in the CRM, added from the report), failed = still an
    open gap (refused, amount or status mismatch), unchanged = the rest (matched, arrived
    meanwhile, a gap ops settled before). ``gaps``: the run's stored discrepancies (``kind``,
    ``status``); records the report lacks (``missing_in_source``) are no transaction of the
    report: they are in the control totals."""
    failed = sum(1 for d in gaps if d.kind != "missing_in_source" and d.status == "open")
    return RunCounts(extracted=received, loaded=ingested,
                     unchanged=received - ingested - failed, failed=failed)


# Finished runs whose counts break the definition, with what is wrong; the quarantined count is
# also checked against the run's quarantined records.
INCONSISTENT_SQL = """
SELECT r.id, r.integration, r.kind, r.status, r.extracted, r.transformed, r.loaded, r.unchanged,
       r.quarantined, r.failed, q.n AS quarantined_records
FROM integration_runs r
LEFT JOIN LATERAL (SELECT count(*) AS n FROM quarantined_records WHERE run_id = r.id) q ON true
WHERE r.status <> 'running'
  AND (r.extracted < 0 OR r.transformed < 0 OR r.loaded < 0 OR r.unchanged < 0
       OR r.quarantined < 0 OR r.failed < 0
       OR r.transformed <> r.extracted - r.quarantined
       OR r.loaded + r.unchanged + r.failed <> r.transformed
       OR r.quarantined <> q.n)
ORDER BY r.id
"""
