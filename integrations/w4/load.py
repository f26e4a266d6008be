"""Load W4 card pages into ``cards`` (with the W4 collection case id and status).

Per page (one transaction, see ``integrations.api_sync``): the valid rows are COPied into a
staging table; cards of an unknown customer are quarantined; the rest are upserted on
``contract_number`` writing only real changes, each of which publishes LOAN_UPDATED (the event of
loan *and card* balances; ``account_number`` is the contract number, ``product`` is ``card``)
with the changed fields. A card W4 sends under another customer is a move
(integrations/owner_moves.py): it keeps its owner until the end of the run decides.
"""

from __future__ import annotations

from psycopg import Connection, sql

from integrations import owner_moves
from integrations.api_sync import ApiRun, PageCounts, PageLoader, quarantine_rows, sync_pages
from integrations.changes import publish_changes, touch_cifs, upsert_changes
from integrations.fields import Quarantine, Row, json_safe
from integrations.w4.client import W4Client
from integrations.w4.transform import transform_card
from portal import clock

INTEGRATION = "W4"
COLUMNS = ("contract_number", "cif", "masked_card_number", "product", "currency",
           "credit_limit", "outstanding", "min_due", "due_date", "days_overdue", "bucket",
           "status", "w4_case_id", "w4_case_status", "source_system")


class CardLoader(PageLoader):
    integration = INTEGRATION
    entity = "cards"

    def load(self, conn: Connection, rows: dict[str, Row], run: ApiRun) -> PageCounts:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS stg_cards ON COMMIT DROP AS SELECT "
                     + ", ".join(COLUMNS) + " FROM cards WITH NO DATA")
        conn.execute("TRUNCATE stg_cards")
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY stg_cards ({}) FROM STDIN").format(
                sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))) as copy:
            for row in rows.values():
                copy.write_row([row.values[c] for c in COLUMNS])
        unknown = conn.execute(
            "DELETE FROM stg_cards s WHERE NOT EXISTS (SELECT 1 FROM customers c "
            "WHERE c.cif = s.cif) RETURNING contract_number, cif").fetchall()
        quarantine_rows(conn, INTEGRATION, run.run_id, [
            Quarantine("cards", f"client_cif: {cif!r} is not a known customer", key,
                       json_safe(rows[key].values), None, rows[key].source_file, None,
                       rows[key].record_number) for key, cif in unknown])
        staged = len(rows) - len(unknown)
        # a card W4 now gives another customer stays where it is until the run decides
        owner_moves.detect(conn, run_id=run.run_id, integration=INTEGRATION, product="card",
                           staging="stg_cards")
        inserted, updated = upsert_changes(conn, "cards", "stg_cards", ("contract_number",),
                                           COLUMNS, owner="cif", now=clock.running_now())
        touch_cifs(conn)
        events = publish_changes(conn, "cards", source_system=INTEGRATION, run_id=run.run_id,
                                 correlation_id=run.correlation_id, extra={"product": "card"})
        return PageCounts(inserted=inserted, updated=updated,
                          unchanged=staged - inserted - updated, quarantined=len(unknown),
                          events=events)


def sync_w4(conn: Connection, client: W4Client, **kwargs) -> ApiRun:
    """One W4 sync run (see ``integrations.api_sync.sync_pages`` for the arguments)."""
    return sync_pages(conn, integration=INTEGRATION,
                      pages=lambda cursor: client.card_pages(cursor=cursor),
                      transform=transform_card, loader=CardLoader(), **kwargs)
