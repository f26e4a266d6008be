"""The strategies' truths for ``flask check invariants`` (portal.ops.invariants)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


def violations(session: Session, now: datetime | None = None) -> list[dict]:
    """Each account is in at most one step of one active strategy per business date; an
    assignment's step, segment, variant, version and strategy exist and belong together (no
    step once an exit condition held; the columns carry no foreign keys, this is their check);
    a strategy's message names the assignment of its account and date."""
    rows = session.execute(text("""
        SELECT 'two assignments in one day' AS problem, business_date, account_number,
               array_agg(id ORDER BY id) AS assignment_ids
        FROM strategy_assignments GROUP BY business_date, account_number HAVING count(*) > 1
        UNION ALL
        SELECT 'step, segment, variant and version disagree', a.business_date,
               a.account_number, ARRAY[a.id]
        FROM strategy_assignments a
        LEFT JOIN strategy_segments s ON s.id = a.segment_id
        LEFT JOIN strategy_versions v ON v.id = a.version_id
        LEFT JOIN strategy_steps st ON st.id = a.step_id
        LEFT JOIN strategy_variants va ON va.id = a.variant_id
        WHERE s.id IS NULL OR v.id IS NULL OR (a.step_id IS NOT NULL AND st.id IS NULL)
           OR (a.variant_id IS NOT NULL AND va.id IS NULL)
           OR s.version_id <> a.version_id OR v.strategy_id <> a.strategy_id
           OR st.segment_id <> a.segment_id OR va.version_id <> a.version_id
           OR (a.step_id IS NOT NULL AND a.exited IS NOT NULL)
        UNION ALL
        SELECT 'strategy message without its assignment', m.business_date, m.account_number,
               ARRAY[m.id]
        FROM messages m LEFT JOIN strategy_assignments a ON a.id = m.strategy_assignment_id
        WHERE m.source = 'strategy' AND (a.id IS NULL OR a.business_date <> m.business_date
              OR a.account_number IS DISTINCT FROM m.account_number)
        ORDER BY 2, 3"""))
    return [dict(r._mapping) for r in rows]
