"""The day's print batch of letters (portal/schedules.py ``letters.print_batch``)."""

from __future__ import annotations

from datetime import date

from portal import clock
from portal.extensions import db
from portal.messages import letters
from workers.context import job


@job
def build_print_batch(business_date: str | None = None) -> dict:
    """Build (or find) the print batch of ``business_date`` (ISO; default: today, bank time)."""
    day = date.fromisoformat(business_date) if business_date else clock.bank_today()
    batch = letters.build_print_batch(db.session, day, actor="system")
    db.session.commit()
    return {"batch_id": batch.id, "business_date": day.isoformat(), "letters": batch.letters,
            "pages": batch.pages}
