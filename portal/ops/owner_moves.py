"""The products a sync run gave (or would give) other customers, and ops' decision on the ones
it held: apply them (the products change hands, PRODUCT_OWNER_CHANGED, both customers' cases
recomputed) or reject them (they stay where they are). Each decision is audited. The work is
integrations/owner_moves.py's, on this session's connection, in its transaction; the view
commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from integrations import owner_moves
from integrations.case_totals import recompute_cases
from portal import audit
from portal.logging import get_correlation_id
from portal.models import Case, Customer, ProductOwnerMove, User

DECISIONS = ("apply", "reject")
MOVES_SHOWN = 200


class MoveDecisionError(Exception):
    """A decision that cannot be made (nothing held, unknown move): shown to the user."""


@dataclass
class MoveRow:
    move: ProductOwnerMove
    old_name: str | None
    new_name: str | None
    decided_by: str | None


@dataclass
class RunMoves:
    rows: list[MoveRow]  # the first MOVES_SHOWN, held first
    counts: dict[str, int]  # status -> moves of the run

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def held(self) -> int:
        return self.counts.get("held", 0)


def run_moves(session: Session, run_id: int) -> RunMoves:
    """The moves of run ``run_id`` (held ones first) with both customers' names."""
    old, new = aliased(Customer), aliased(Customer)
    found = session.execute(
        select(ProductOwnerMove, old.name, new.name, User.full_name)
        .outerjoin(old, old.cif == ProductOwnerMove.old_cif)
        .outerjoin(new, new.cif == ProductOwnerMove.new_cif)
        .outerjoin(User, User.id == ProductOwnerMove.decided_by_id)
        .where(ProductOwnerMove.run_id == run_id)
        .order_by(ProductOwnerMove.status != "held", ProductOwnerMove.id)
        .limit(MOVES_SHOWN)).all()
    counts = dict(session.execute(
        select(ProductOwnerMove.status, func.count()).where(ProductOwnerMove.run_id == run_id)
        .group_by(ProductOwnerMove.status)).all())
    return RunMoves([MoveRow(*row) for row in found], counts)


def decide(session: Session, user, run_id: int, decision: str,
           move_id: int | None = None) -> tuple[int, int]:
    """Apply or reject the held moves of run ``run_id`` (only ``move_id`` when given), audited;
    returns (moves decided, cases whose totals changed). No commit."""
    if decision not in DECISIONS:
        raise MoveDecisionError("choose apply or reject")
    query = select(ProductOwnerMove.id).where(ProductOwnerMove.run_id == run_id,
                                              ProductOwnerMove.status == "held")
    if move_id is not None:
        query = query.where(ProductOwnerMove.id == move_id)
    ids = list(session.scalars(query.order_by(ProductOwnerMove.id).with_for_update()))
    if not ids:
        raise MoveDecisionError("this move is no longer held" if move_id is not None
                                else "this run holds no moves any more")
    conn = session.connection().connection.driver_connection
    cases_changed = 0
    if decision == "apply":
        decided, cifs = owner_moves.apply(conn, ids, decided_by_id=user.id,
                                          correlation_id=get_correlation_id())
        case_ids = list(session.scalars(select(Case.id).where(Case.cif.in_(sorted(cifs)))
                                        .order_by(Case.id)))
        cases_changed = recompute_cases(conn, case_ids) if case_ids else 0
    else:
        decided = owner_moves.reject(conn, ids, decided_by_id=user.id)
    session.expire_all()  # the moves, products and cases changed beneath the session
    audit.record(session, user, f"sync.owner_moves.{decision}", "integration_run", run_id,
                 before={"held": ids},
                 after={"decision": decision, "moves": decided, "cases_changed": cases_changed})
    return decided, cases_changed

