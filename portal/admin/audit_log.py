"""Reading the audit log: rows filtered by user, customer (CIF), kind of change and a range of
bank dates, newest first, a page at a time (keyset on ``(at, id)``, index ix_audit_log_at), and
the same rows as CSV. Read only."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time, timedelta

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from portal import clock
from portal.auth.login_protection import normalize_username
from portal.models import Address, AuditLog, Email, Phone, Promise, User, Visit

PAGE_SIZE = 50
CSV_LIMIT = 100_000
CUSTOMER_ENTITIES = ("customer", "case")


def _rows_of_a_customer() -> dict:
    """Audited entity types whose id names a row that belongs to one customer (its CIF)."""
    return {"phone": Phone, "address": Address, "email": Email, "promise": Promise,
            "visit": Visit}


@dataclass(frozen=True)
class AuditFilters:
    user: str = ""  # a username: the rows it made, or made about it
    cif: str = ""
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_args(self) -> dict[str, str]:
        args = {"user": self.user, "cif": self.cif, "action": self.action,
                "date_from": self.date_from.isoformat() if self.date_from else "",
                "date_to": self.date_to.isoformat() if self.date_to else ""}
        return {k: v for k, v in args.items() if v}


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditLog]
    next_cursor: str | None  # the cursor of the next (older) page


def _conditions(session: Session, filters: AuditFilters) -> list:
    conditions = []
    if filters.user:
        user_id = session.scalar(select(User.id).where(
            func.lower(User.username) == normalize_username(filters.user)))
        about = and_(AuditLog.entity_type == "user", AuditLog.entity_id == str(user_id)) \
            if user_id is not None else None
        by = AuditLog.actor_id == user_id if user_id is not None else \
            func.lower(AuditLog.actor_label) == normalize_username(filters.user)
        conditions.append(or_(by, about) if about is not None else by)
    if filters.cif:
        cif = filters.cif.strip().upper()
        conditions.append(or_(
            and_(AuditLog.entity_type.in_(CUSTOMER_ENTITIES), AuditLog.entity_id == cif),
            AuditLog.before["cif"].astext == cif, AuditLog.after["cif"].astext == cif,
            # rows about a customer's contacts, promises and visits name the row, not the CIF
            *(and_(AuditLog.entity_type == kind,
                   AuditLog.entity_id.in_(select(cast(model.id, String))
                                          .where(model.cif == cif)))
              for kind, model in _rows_of_a_customer().items())))
    if filters.action:
        conditions.append(AuditLog.action == filters.action)
    if filters.date_from:
        conditions.append(AuditLog.at >= clock.bank_datetime(filters.date_from, time(0, 0)))
    if filters.date_to:
        conditions.append(AuditLog.at < clock.bank_datetime(filters.date_to + timedelta(days=1),
                                                            time(0, 0)))
    return conditions


def encode_cursor(row: AuditLog) -> str:
    return f"{row.at.isoformat()}_{row.id}"


def decode_cursor(raw: str | None):
    """``(at, id)`` from a cursor, or None for a cursor that is missing or not one of ours."""
    from datetime import datetime

    if not raw or "_" not in raw:
        return None
    at, _, row_id = raw.rpartition("_")
    try:
        return datetime.fromisoformat(at), int(row_id)
    except ValueError:
        return None


def page(session: Session, filters: AuditFilters, cursor: str | None = None,
         size: int = PAGE_SIZE) -> AuditPage:
    query = select(AuditLog).where(*_conditions(session, filters))
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(func.row(AuditLog.at, AuditLog.id) < func.row(*after))
    rows = list(session.scalars(query.order_by(AuditLog.at.desc(), AuditLog.id.desc())
                                .limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return AuditPage(rows, encode_cursor(rows[-1]) if more and rows else None)


def actions(session: Session) -> list[str]:
    """The kinds of change the log holds (for the filter)."""
    return list(session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))


CSV_COLUMNS = ("id", "at", "actor", "action", "entity_type", "entity_id", "before", "after",
               "correlation_id", "ip_address")


def _json(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True,
                                                default=str)


def csv_lines(session: Session, filters: AuditFilters) -> Iterator[str]:
    """The rows as CSV (UTF-8 with a BOM, so spreadsheet programs read Vietnamese), newest first,
    times in the bank's zone."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + buffer.getvalue()
    query = (select(AuditLog).where(*_conditions(session, filters))
             .order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(CSV_LIMIT)
             .execution_options(yield_per=1000))
    zone = clock.bank_zone()
    for row in session.scalars(query):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([row.id, row.at.astimezone(zone).isoformat(timespec="seconds"),
                         *map(_cell, (row.actor_label or "", row.action, row.entity_type,
                                      row.entity_id or "", _json(row.before),
                                      _json(row.after), row.correlation_id or "",
                                      row.ip_address or ""))])
        yield buffer.getvalue()


def _cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def changes(row: AuditLog) -> list[tuple[str, object, object]]:
    """(field, before, after) for every key of either side, for the before/after table."""
    before, after = row.before or {}, row.after or {}
    keys = list(dict.fromkeys([*before.keys(), *after.keys()]))
    return [(k, before.get(k), after.get(k)) for k in keys]


def action_words(code: str) -> str | None:
    """The words for a kind of change, or None where it has none (the code is shown then)."""
    from portal.labels import LABELS

    found = LABELS["audit_action"].get(code)
    return str(found) if found is not None else None


def entity_words(code: str) -> str | None:
    from portal.labels import LABELS

    found = LABELS["audit_entity"].get(code)
    return str(found) if found is not None else None
