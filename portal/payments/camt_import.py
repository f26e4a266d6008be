"""Importing an ISO 20022 camt.054 file (parsed by integrations/payments/camt.py): each booked
entry is accepted once by the same rules as the webhook (portal.payments.notifications.accept),
so a payment notified both ways counts once; each refused entry is listed with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.payments.camt import parse_camt054
from portal.models import Loan
from portal.payments.notifications import Refused, accept, parse_notice


@dataclass
class CamtImport:
    message_id: str | None = None
    entries: int = 0
    accepted: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    skipped: int = 0
    refused: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"message_id": self.message_id, "entries": self.entries,
                "accepted": len(self.accepted), "duplicates": len(self.duplicates),
                "skipped": self.skipped, "refused": self.refused}


def import_camt054(session: Session, data: bytes) -> CamtImport:
    """Import a camt.054 file: each booked entry accepted once (``source = manual``), each
    refused one listed with its reason. Commits per entry."""
    message_id, entries = parse_camt054(data)
    result = CamtImport(message_id=message_id, entries=len(entries))
    for index, raw in enumerate(entries, start=1):
        if not raw.pop("_booked") or not raw.pop("_relevant"):
            result.skipped += 1
            continue
        record = {k: v for k, v in raw.items() if v is not None}
        if record.get("loan_account_number"):  # camt carries no CIF: the loan's customer
            record["cif"] = session.scalar(select(Loan.cif).where(
                Loan.account_number == record["loan_account_number"])) or "?"
        try:
            notice = parse_notice(record, require_event_id=False)
            outcome = accept(session, notice, source="manual")
        except Refused as refusal:
            session.rollback()
            result.refused.append({"entry": index, "reference": record.get("reference_number"),
                                   "code": refusal.code, "field": refusal.field,
                                   "message": refusal.message})
            continue
        session.commit()
        (result.duplicates if outcome.duplicate else result.accepted).append(outcome.payment_id)
    return result
