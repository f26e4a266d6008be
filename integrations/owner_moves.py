"""Products whose owner (CIF) a bank sync changes: a first-class, visible, decidable change.

A source (T24 loans, W4 cards, LOS applications) may send a product we know under another
customer. The loaders never move it silently:

- :func:`detect` — in each batch's transaction, before the upsert: every staged product whose
  customer differs from ours is recorded in ``product_owner_moves`` (``pending``, with the run),
  and its staged row is given back its current owner, so everything else of the record loads
  (balances, DPD …) while the product stays where it is for now. A move held earlier that the
  source no longer proposes (it sends the current owner again) is ``withdrawn``.
- :func:`decide` — once, at the end of the run (its last transaction): when the run's pending
  moves are more than ``SYNC_OWNER_MOVES_HOLD_SHARE`` of the products it received, they are all
  ``held`` for ops (the run page offers Apply / Reject); else they are applied — except a move
  ops rejected before, which is held again rather than applied behind their back.
- :func:`apply` — the products change hands, each move publishes PRODUCT_OWNER_CHANGED (the
  old and the new CIF, the source, the run; its subscriber tells both cases' agents), and the
  caller recomputes both customers' cases (the cifs are returned). Promises and actions are not
  touched: they stay with the customer they were made with; the case view shows the move.
- :func:`reject` — a held move is refused: the product stays with its current owner.
- :func:`hold_pending` — a run that fails leaves its committed pages' moves held for ops.

All of it is plain SQL on the loader's psycopg connection, in the caller's transaction; the ops
page runs :func:`apply` / :func:`reject` on its session's connection (portal/ops/owner_moves.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, has_app_context
from psycopg import Connection, sql

from portal.events.catalog import get_event_type
from portal.tracing import current_traceparent

EVENT = "PRODUCT_OWNER_CHANGED"
DEFAULT_HOLD_SHARE = 0.05
# product -> (table, key column)
PRODUCTS = {"loan": ("loans", "account_number"), "card": ("cards", "contract_number"),
            "application": ("loan_applications", "application_id")}


@dataclass
class Decision:
    applied: int = 0
    held: int = 0
    cifs: set[str] = field(default_factory=set)  # both owners of every applied move

    def control(self) -> dict:
        return {"owner_moves": self.applied, "owner_moves_held": self.held}


def hold_share() -> float:
    """``SYNC_OWNER_MOVES_HOLD_SHARE`` (a share of the products a run received)."""
    if has_app_context():
        return float(current_app.config.get("SYNC_OWNER_MOVES_HOLD_SHARE", DEFAULT_HOLD_SHARE))
    return DEFAULT_HOLD_SHARE


def detect(conn: Connection, *, run_id: int, integration: str, product: str,
           staging: str) -> int:
    """Record the staged products of ``staging`` whose customer differs from ours as pending
    moves of ``run_id`` and keep their current owner in the staged rows. Returns how many."""
    table, key = PRODUCTS[product]
    names = {"stg": sql.Identifier(staging), "t": sql.Identifier(table),
             "k": sql.Identifier(key)}
    conn.execute(sql.SQL("""
        UPDATE product_owner_moves m
        SET status = 'withdrawn', decided_at = crm_now(),
            note = 'the source sent the product under its current owner again'
        FROM {stg} s
        WHERE m.status IN ('pending', 'held') AND m.product = %(product)s
          AND m.product_key = s.{k} AND s.cif = m.old_cif""").format(**names),
        {"product": product})
    return conn.execute(sql.SQL("""
        WITH found AS (
            SELECT s.{k} AS key, t.cif AS old_cif, s.cif AS new_cif
            FROM {stg} s JOIN {t} t ON t.{k} = s.{k}
            WHERE s.cif IS NOT NULL AND t.cif <> s.cif
        ), recorded AS (
            INSERT INTO product_owner_moves (run_id, integration, product, product_key,
                                             old_cif, new_cif, status)
            SELECT DISTINCT ON (key) %(run)s, %(integration)s, %(product)s, key, old_cif,
                   new_cif, 'pending'
            FROM found
            ON CONFLICT (product, product_key) WHERE status IN ('pending', 'held')
            DO UPDATE SET new_cif = EXCLUDED.new_cif, detected_at = crm_now()
            WHERE product_owner_moves.new_cif <> EXCLUDED.new_cif
        )
        UPDATE {stg} s SET cif = f.old_cif FROM found f WHERE s.{k} = f.key""").format(**names),
        {"run": run_id, "integration": integration, "product": product}).rowcount


def decide(conn: Connection, run_id: int, received: int, *,
           share: float | None = None) -> Decision:
    """Apply or hold the pending moves of ``run_id`` (see the module docstring). ``received``:
    the products the run received (the share's base). Also holds the pending moves of runs
    that ended without deciding (a killed worker)."""
    share = hold_share() if share is None else share
    conn.execute("""
        UPDATE product_owner_moves m SET status = 'held',
               note = 'its run ended before deciding: an ops decision is needed'
        FROM integration_runs r
        WHERE m.status = 'pending' AND r.id = m.run_id AND m.run_id <> %s
          AND r.status <> 'running'""", (run_id,))
    pending = conn.execute("""
        SELECT m.id, EXISTS (SELECT 1 FROM product_owner_moves r WHERE r.status = 'rejected'
                               AND r.product = m.product AND r.product_key = m.product_key
                               AND r.old_cif = m.old_cif AND r.new_cif = m.new_cif)
        FROM product_owner_moves m WHERE m.run_id = %s AND m.status = 'pending'
        ORDER BY m.id""", (run_id,)).fetchall()
    decision = Decision()
    if not pending:
        return decision
    if len(pending) > share * max(received, 1):
        note = (f"{len(pending)} of the {received} products of the run would change owner "
                f"({100 * len(pending) / max(received, 1):.1f}%, more than "
                f"{100 * share:g}%): held for an ops decision")
        decision.held = _hold(conn, [move_id for move_id, _ in pending], note)
        return decision
    decision.held = _hold(conn, [move_id for move_id, rejected in pending if rejected],
                          "ops rejected this move before: held for a new decision")
    applied, cifs = apply(conn, [move_id for move_id, rejected in pending if not rejected])
    decision.applied, decision.cifs = applied, cifs
    return decision


def _hold(conn: Connection, ids: list[int], note: str) -> int:
    if not ids:
        return 0
    return conn.execute("UPDATE product_owner_moves SET status = 'held', note = %s "
                        "WHERE id = ANY(%s) AND status = 'pending'", (note, ids)).rowcount


def hold_pending(conn: Connection, run_id: int, note: str) -> int:
    """The pending moves of ``run_id`` (a run that failed after some pages) wait for ops."""
    ids = [i for (i,) in conn.execute("SELECT id FROM product_owner_moves WHERE run_id = %s "
                                      "AND status = 'pending'", (run_id,))]
    return _hold(conn, ids, note)


def apply(conn: Connection, ids: list[int], *, decided_by_id: int | None = None,
          correlation_id: str | None = None) -> tuple[int, set[str]]:
    """Move the products of the open moves ``ids`` to their new owners and publish one
    PRODUCT_OWNER_CHANGED each (caller's transaction). A move whose product no longer belongs
    to its old owner is withdrawn instead. Returns (moves applied, both owners' cifs); the
    caller recomputes those customers' cases."""
    if not ids:
        return 0, set()
    for product, (table, key) in PRODUCTS.items():
        conn.execute(sql.SQL("""
            UPDATE product_owner_moves m SET status = 'withdrawn', decided_at = crm_now(),
                   decided_by_id = %(by)s,
                   note = 'the product no longer belonged to the old owner'
            WHERE m.id = ANY(%(ids)s) AND m.status IN ('pending', 'held')
              AND m.product = %(product)s
              AND NOT EXISTS (SELECT 1 FROM {t} p WHERE p.{k} = m.product_key
                              AND p.cif = m.old_cif)""").format(
            t=sql.Identifier(table), k=sql.Identifier(key)),
            {"ids": ids, "product": product, "by": decided_by_id})
    applied = [row[0] for row in conn.execute("""
        UPDATE product_owner_moves SET status = 'applied', decided_at = crm_now(),
               decided_by_id = %s
        WHERE id = ANY(%s) AND status IN ('pending', 'held') RETURNING id""",
        (decided_by_id, ids))]
    if not applied:
        return 0, set()
    for product, (table, key) in PRODUCTS.items():
        conn.execute(sql.SQL("""
            UPDATE {t} p SET cif = m.new_cif, updated_at = crm_now()
            FROM product_owner_moves m
            WHERE m.id = ANY(%(ids)s) AND m.product = %(product)s
              AND p.{k} = m.product_key AND p.cif = m.old_cif""").format(
            t=sql.Identifier(table), k=sql.Identifier(key)),
            {"ids": applied, "product": product})
    conn.execute("""
        INSERT INTO events (type, version, aggregate_type, aggregate_id, payload, correlation_id,
                            traceparent)
        SELECT %(type)s, %(version)s, 'product', m.product_key,
               jsonb_strip_nulls(jsonb_build_object(
                   'move_id', m.id, 'product', m.product, 'product_key', m.product_key,
                   'old_cif', m.old_cif, 'new_cif', m.new_cif,
                   'source_system', m.integration, 'integration_run_id', m.run_id,
                   'decided_by_id', m.decided_by_id, 'held', m.decided_by_id IS NOT NULL,
                   'moved_at', to_char(m.decided_at AT TIME ZONE 'UTC',
                                       'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))),
               %(correlation_id)s, %(traceparent)s
        FROM product_owner_moves m WHERE m.id = ANY(%(ids)s) ORDER BY m.id""",
        {"type": EVENT, "version": get_event_type(EVENT).version, "ids": applied,
         "correlation_id": correlation_id, "traceparent": current_traceparent()})
    cifs = {cif for row in conn.execute(
        "SELECT old_cif, new_cif FROM product_owner_moves WHERE id = ANY(%s)", (applied,))
        for cif in row}
    return len(applied), cifs


def reject(conn: Connection, ids: list[int], *, decided_by_id: int | None = None) -> int:
    """Refuse the held moves ``ids``: their products stay with their current owners."""
    if not ids:
        return 0
    return conn.execute("""
        UPDATE product_owner_moves SET status = 'rejected', decided_at = crm_now(),
               decided_by_id = %s
        WHERE id = ANY(%s) AND status = 'held'""", (decided_by_id, ids)).rowcount


def touch(conn: Connection, cifs: set[str]) -> None:
    """Add ``cifs`` to ``sync_touched_cifs`` (their cases are recomputed at the end of a load)."""
    if cifs:
        conn.execute("INSERT INTO sync_touched_cifs (cif) SELECT unnest(%s::text[]) "
                     "ON CONFLICT DO NOTHING", (sorted(cifs),))
