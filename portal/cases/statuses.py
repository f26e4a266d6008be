"""Statuses people set on a case, and the customer's master note.

Five dictionaries (``STATUS_KINDS``), each a list of ``StatusValue`` rows an admin keeps
(portal/admin/statuses.py): the processing state (with substates), the customer status, the
collateral status, the recovery ability and the lending violation. An agent sets a value with a
reason (``set_status``); the system moves the processing state after an action
(``system_processing_state``). Every change is a ``CaseStatusChange`` row and an audit row; the
case's column holds the latest row's value (``flask check invariants``: ``violations``).

The master note is one living text per customer (``cases.notes``); each save is a
``MasterNoteVersion`` and an audit row, so the text an edit replaced is the version before it.
The append-only action notes are something else (cases.actions).

Case.status (open, promised, closed …) stays the system's: nothing here changes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from portal import audit
from portal.cases import queue
from portal.models import Case, CaseStatusChange, MasterNoteVersion, StatusValue, User
from portal.models.enums import STATUS_KINDS

REASON_MAX = 500
NOTE_MAX = 4000
HISTORY_LIMIT = 50

# the dictionaries, as people name them
KIND_NAMES = {
    "processing_state": _l("Processing state"),
    "customer_status": _l("Customer status"),
    "collateral_status": _l("Collateral status"),
    "recovery_ability": _l("Recovery ability"),
    "lending_violation": _l("Lending violation"),
}
# the case column holding each dictionary's current value (processing_state: the code)
CASE_COLUMN = {
    "customer_status": "customer_status_id",
    "collateral_status": "collateral_status_id",
    "recovery_ability": "recovery_ability_id",
    "lending_violation": "lending_violation_id",
}


class StatusValidationError(ValueError):
    """Field name → message, for the form to show next to each field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --- reading ---------------------------------------------------------------------------------


def dictionary(session: Session, kind: str, *, active_only: bool = False,
               top_level: bool | None = None) -> list[StatusValue]:
    """The values of one dictionary in their order (substates after their parent's order)."""
    query = select(StatusValue).where(StatusValue.kind == kind)
    if active_only:
        query = query.where(StatusValue.active.is_(True))
    if top_level is True:
        query = query.where(StatusValue.parent_id.is_(None))
    elif top_level is False:
        query = query.where(StatusValue.parent_id.is_not(None))
    return list(session.scalars(query.order_by(StatusValue.sort_order, StatusValue.code)))


def queue_choices(session: Session, counts) -> dict[str, list[tuple[str, StatusValue, int]]]:
    """The queue's filters by processing state and customer status: (argument, value, cases)
    for each active value, and each retired one that cases still hold."""
    states = [(v.code, v, counts.processing_states.get(v.code, 0))
              for v in dictionary(session, "processing_state", top_level=True)]
    customer = [(str(v.id), v, counts.customer_statuses.get(str(v.id), 0))
                for v in dictionary(session, "customer_status")]
    return {"processing": [c for c in states if c[1].active or c[2]],
            "customer_status": [c for c in customer if c[1].active or c[2]]}


def value_by_code(session: Session, kind: str, code: str | None) -> StatusValue | None:
    if not code:
        return None
    return session.scalar(select(StatusValue).where(StatusValue.kind == kind,
                                                    StatusValue.code == code))


@dataclass
class CurrentStatus:
    kind: str
    value: StatusValue | None
    substate: StatusValue | None = None


def current_statuses(session: Session, case: Case) -> list[CurrentStatus]:
    """The case's value in each dictionary (None: never set), in ``STATUS_KINDS`` order."""
    ids = {kind: getattr(case, column) for kind, column in CASE_COLUMN.items()}
    wanted = [i for i in (*ids.values(), case.processing_substate_id) if i is not None]
    by_id = {v.id: v for v in session.scalars(
        select(StatusValue).where(StatusValue.id.in_(wanted)))} if wanted else {}
    result = []
    for kind in STATUS_KINDS:
        if kind == "processing_state":
            result.append(CurrentStatus(kind, value_by_code(session, kind, case.processing_state),
                                        by_id.get(case.processing_substate_id)))
        else:
            result.append(CurrentStatus(kind, by_id.get(ids[kind])))
    return result


def status_history(session: Session, case_id: int,
                   limit: int = HISTORY_LIMIT) -> list[CaseStatusChange]:
    """The case's status changes, latest first."""
    return list(session.scalars(
        select(CaseStatusChange).where(CaseStatusChange.case_id == case_id)
        .options(*(selectinload(getattr(CaseStatusChange, name)) for name in (
            "value", "substate", "previous_value", "previous_substate", "changed_by")))
        .order_by(CaseStatusChange.changed_at.desc(), CaseStatusChange.id.desc()).limit(limit)))


def note_versions(session: Session, cif: str,
                  limit: int = HISTORY_LIMIT) -> list[MasterNoteVersion]:
    """The master note's versions, latest first."""
    return list(session.scalars(
        select(MasterNoteVersion).where(MasterNoteVersion.cif == cif)
        .options(selectinload(MasterNoteVersion.edited_by))
        .order_by(MasterNoteVersion.edited_at.desc(), MasterNoteVersion.id.desc()).limit(limit)))


# --- changing --------------------------------------------------------------------------------


def _current_ids(session: Session, case: Case, kind: str) -> tuple[int | None, int | None]:
    if kind == "processing_state":
        current = value_by_code(session, kind, case.processing_state)
        return (current.id if current else None), case.processing_substate_id
    return getattr(case, CASE_COLUMN[kind]), None


def _apply(session: Session, case: Case, kind: str, value: StatusValue,
           substate: StatusValue | None) -> None:
    if kind == "processing_state":
        case.processing_state = value.code
        case.processing_substate_id = substate.id if substate else None
    else:
        setattr(case, CASE_COLUMN[kind], value.id)


def _words(value: StatusValue | None, substate: StatusValue | None = None) -> str | None:
    if value is None:
        return None
    return value.code + (f"/{substate.code}" if substate else "")


def set_status(session: Session, actor: User, case: Case, kind: str, value_id: int | None,
               substate_id: int | None, reason: str | None, now: datetime) -> CaseStatusChange:
    """Set the case's value in dictionary ``kind`` (and the processing state's substate), with a
    reason. Refused (``StatusValidationError``, nothing written) without a reason, with a value
    that is unknown, retired or of another dictionary, or a substate not of the value. Writes
    the history row and the audit row; no commit."""
    if kind not in STATUS_KINDS:
        raise StatusValidationError({"kind": _("Choose what to set.")})
    errors: dict[str, str] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = _("Say why the status changes.")
    elif len(reason) > REASON_MAX:
        errors["reason"] = _("Keep the reason within %(num)s characters.", num=REASON_MAX)
    value = session.get(StatusValue, value_id) if value_id is not None else None
    if value_id is None:
        errors["value_id"] = _("Choose a value.")
    elif value is None or value.kind != kind or value.parent_id is not None:
        errors["value_id"] = _("This value is not one of this list.")
    elif not value.active:
        errors["value_id"] = _("This value is retired: choose another.")
    substate = session.get(StatusValue, substate_id) if substate_id is not None else None
    if substate_id is not None and "value_id" not in errors:
        if substate is None or substate.parent_id != value.id:
            errors["substate_id"] = _("This substate is not one of the chosen state.")
        elif not substate.active:
            errors["substate_id"] = _("This substate is retired: choose another.")
    if not errors:
        previous_id, previous_sub_id = _current_ids(session, case, kind)
        if previous_id == value.id and previous_sub_id == (substate.id if substate else None):
            errors["value_id"] = _("The case already has this status.")
    if errors:
        raise StatusValidationError(errors)
    previous = session.get(StatusValue, previous_id) if previous_id else None
    previous_sub = session.get(StatusValue, previous_sub_id) if previous_sub_id else None
    _apply(session, case, kind, value, substate)
    change = CaseStatusChange(
        case_id=case.id, kind=kind, value_id=value.id,
        substate_id=substate.id if substate else None, previous_value_id=previous_id,
        previous_substate_id=previous_sub_id, reason=reason, source="manual",
        changed_by_id=actor.id, changed_at=now)
    session.add(change)
    session.flush()
    audit.record(session, actor, "case.status", "case", case.id,
                 before={kind: _words(previous, previous_sub)},
                 after={kind: _words(value, substate), "reason": reason})
    queue.forget_queue_counts(case.assigned_agent_id, case.assigned_field_agent_id)
    return change


def system_processing_state(session: Session, case: Case, code: str, now: datetime) -> None:
    """The system moves the case to processing state ``code`` (after an action): the substate
    of the state it leaves goes with it, and the history says the system did it."""
    if case.processing_state == code and case.processing_substate_id is None:
        return
    value = value_by_code(session, "processing_state", code)
    if value is None:  # an admin cannot delete a state the system uses; never here
        raise LookupError(f"processing state {code!r} is not in the dictionary")
    previous_id, previous_sub_id = _current_ids(session, case, "processing_state")
    case.processing_state = code
    case.processing_substate_id = None
    session.add(CaseStatusChange(
        case_id=case.id, kind="processing_state", value_id=value.id,
        previous_value_id=previous_id, previous_substate_id=previous_sub_id, source="system",
        changed_at=now))


def save_master_note(session: Session, actor: User, case: Case, note: str | None,
                     now: datetime) -> MasterNoteVersion:
    """Save the customer's master note as ``note``: a new version and an audit row; no commit.
    Refused (``StatusValidationError`` on "note") when too long or unchanged."""
    note = (note or "").replace("\r\n", "\n").strip()
    if len(note) > NOTE_MAX:
        raise StatusValidationError({"note": _(
            "Keep the note within %(num)s characters (this one has %(len)s).",
            num=NOTE_MAX, len=len(note))})
    before = case.notes or ""
    if note == before:
        raise StatusValidationError({"note": _("The note has not changed.")})
    case.notes = note or None
    version = MasterNoteVersion(cif=case.cif, text=note, edited_by_id=actor.id, edited_at=now)
    session.add(version)
    session.flush()
    audit.record(session, actor, "customer.master_note", "customer", case.cif,
                 before={"note": before}, after={"note": note})
    return version


# --- what must agree (flask check invariants) ------------------------------------------------


def violations(session: Session, now: datetime | None = None) -> list[dict]:
    """Cases whose statuses disagree with their history or their dictionaries, and master notes
    that differ from their latest version."""
    column_checks = " UNION ALL ".join(
        f"""SELECT c.id AS case_id, '{kind}' AS kind,
               'value of another list' AS problem
            FROM cases c JOIN status_values v ON v.id = c.{column}
            WHERE v.kind <> '{kind}' OR v.parent_id IS NOT NULL
            UNION ALL
            SELECT l.case_id, '{kind}', 'not the latest history row'
            FROM (SELECT DISTINCT ON (case_id) case_id, value_id FROM case_status_changes
                  WHERE kind = '{kind}' ORDER BY case_id, changed_at DESC, id DESC) l
            JOIN cases c ON c.id = l.case_id
            WHERE c.{column} IS DISTINCT FROM l.value_id"""
        for kind, column in CASE_COLUMN.items())
    rows = session.execute(text(f"""
        SELECT c.id AS case_id, 'processing_state' AS kind,
               'not a processing state of the dictionary' AS problem
        FROM cases c LEFT JOIN status_values v
          ON v.kind = 'processing_state' AND v.code = c.processing_state AND v.parent_id IS NULL
        WHERE v.id IS NULL
        UNION ALL
        SELECT c.id, 'processing_state', 'substate not of the state'
        FROM cases c JOIN status_values s ON s.id = c.processing_substate_id
        LEFT JOIN status_values p ON p.id = s.parent_id
        WHERE p.code IS DISTINCT FROM c.processing_state OR p.kind <> 'processing_state'
        UNION ALL
        SELECT l.case_id, 'processing_state', 'not the latest history row'
        FROM (SELECT DISTINCT ON (case_id) case_id, value_id, substate_id
              FROM case_status_changes WHERE kind = 'processing_state'
              ORDER BY case_id, changed_at DESC, id DESC) l
        JOIN cases c ON c.id = l.case_id JOIN status_values v ON v.id = l.value_id
        WHERE v.code <> c.processing_state
           OR l.substate_id IS DISTINCT FROM c.processing_substate_id
        UNION ALL
        {column_checks}
        UNION ALL
        SELECT c.id, 'master_note', 'not the latest version'
        FROM cases c
        LEFT JOIN LATERAL (SELECT text FROM master_note_versions m WHERE m.cif = c.cif
                           ORDER BY edited_at DESC, id DESC LIMIT 1) l ON true
        WHERE (l.text IS NULL AND c.notes IS NOT NULL)
           OR (l.text IS NOT NULL AND coalesce(c.notes, '') <> l.text)
        ORDER BY 1, 2"""))
    return [dict(row._mapping) for row in rows]


# --- how a value looks -----------------------------------------------------------------------


def _luminance(colour: str) -> float:
    """WCAG relative luminance of "#rrggbb"."""
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two "#rrggbb" colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(background: str) -> str:
    """Black or white, whichever contrasts more with ``background`` (a badge's text)."""
    return "#000000" if contrast(background, "#000000") >= contrast(background, "#ffffff") \
        else "#ffffff"
