"""Load LOS application pages into ``loan_applications``; referees become reference customers.

Per page (one transaction, see ``integrations.api_sync``):

- applications of an unknown customer are quarantined (with their referees);
- an application whose ``loan_account_number`` is not (yet) a loan of ours is loaded unlinked
  (``account_number`` NULL, the LOS number kept in ``raw.loan_account_number``); the end of every
  LOS run links such applications once T24 has delivered the loan;
- applications are upserted on ``application_id`` (only real changes written); one LOS now
  gives another customer is a move (integrations/owner_moves.py), decided at the end of the run;
- referees → ``reference_customers`` (``ref_cif`` = the LOS referee id, ``primary_cif`` = the
  applicant, source LOS), upserted the same way; a changed referee publishes CUSTOMER_UPDATED for
  the applicant (changes named ``reference.<field>``); their phone → a ``phones`` row of source
  LOS (T24's and the CRM's phones are never touched).
"""

from __future__ import annotations

from datetime import datetime

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from integrations import owner_moves
from integrations.api_sync import ApiRun, PageCounts, PageLoader, quarantine_rows, sync_pages
from integrations.changes import publish_changes, upsert_changes
from integrations.fields import Quarantine, Row, json_safe
from integrations.los.client import LOSClient
from integrations.los.transform import transform_application
from portal import clock

INTEGRATION = "LOS"
APPLICATION_COLUMNS = ("application_id", "cif", "account_number", "product", "requested_amount",
                       "approved_amount", "currency", "application_date", "decision_date",
                       "disbursement_date", "monthly_income", "employer", "channel", "status",
                       "raw", "source_system")
REFERENCE_COLUMNS = ("ref_cif", "primary_cif", "relationship_type", "type", "name",
                     "date_of_birth", "national_id", "gender", "company_name", "contacts",
                     "source_system")
PHONE_COLUMNS = ("ref_cif", "number", "type", "number_e164", "is_primary", "is_verified",
                 "do_not_contact")


def _value(value):
    return Jsonb(value) if isinstance(value, dict | list) else value


def _copy(conn: Connection, table: str, columns, rows) -> None:
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))) as copy:
        for row in rows:
            copy.write_row([_value(row[c]) for c in columns])


def _staging(conn: Connection, name: str, table: str, columns) -> None:
    conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DROP AS SELECT {} FROM {} "
                         "WITH NO DATA").format(sql.Identifier(name),
                                                sql.SQL(", ").join(map(sql.Identifier, columns)),
                                                sql.Identifier(table)))
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(name)))


class ApplicationLoader(PageLoader):
    integration = INTEGRATION
    entity = "loan_applications"

    def load(self, conn: Connection, rows: dict[str, Row], run: ApiRun) -> PageCounts:
        now = clock.running_now()
        _staging(conn, "stg_applications", "loan_applications", APPLICATION_COLUMNS)
        _copy(conn, "stg_applications", APPLICATION_COLUMNS, (r.values for r in rows.values()))
        unknown = conn.execute(
            "DELETE FROM stg_applications s WHERE NOT EXISTS (SELECT 1 FROM customers c "
            "WHERE c.cif = s.cif) RETURNING application_id, cif").fetchall()
        quarantine_rows(conn, INTEGRATION, run.run_id, [
            Quarantine("loan_applications", f"customer_cif: {cif!r} is not a known customer",
                       key, json_safe({**rows[key].values, **rows[key].contacts}), None,
                       rows[key].source_file, None, rows[key].record_number)
            for key, cif in unknown])
        unlinked = conn.execute(
            "UPDATE stg_applications s SET raw = coalesce(s.raw, '{}'::jsonb) || "
            "jsonb_build_object('loan_account_number', s.account_number), account_number = NULL "
            "WHERE s.account_number IS NOT NULL AND NOT EXISTS (SELECT 1 FROM loans l "
            "WHERE l.account_number = s.account_number)").rowcount
        staged = len(rows) - len(unknown)
        # an application LOS now gives another customer stays where it is until the run decides
        owner_moves.detect(conn, run_id=run.run_id, integration=INTEGRATION,
                           product="application", staging="stg_applications")
        inserted, updated = upsert_changes(conn, "loan_applications", "stg_applications",
                                           ("application_id",), APPLICATION_COLUMNS,
                                           owner="cif", now=now)
        counts = PageCounts(inserted=inserted, updated=updated,
                            unchanged=staged - inserted - updated, quarantined=len(unknown),
                            extra={"unlinked": unlinked})
        accepted = {key for (key,) in conn.execute(
            "SELECT application_id FROM stg_applications")}
        references, phones = {}, {}
        for key in accepted:
            contacts = rows[key].contacts
            for reference in contacts.get("reference_customers", []):
                references.setdefault(reference["ref_cif"], reference)
            for phone in contacts.get("phones", []):
                phones.setdefault((phone["ref_cif"], phone["number"]), phone)
        if references:
            counts.extra["referees_changed"] = self._referees(conn, references, phones, run, now)
            counts.events = publish_changes(conn, "reference_customers",
                                            source_system=INTEGRATION, run_id=run.run_id,
                                            correlation_id=run.correlation_id)
        return counts

    def _referees(self, conn: Connection, references: dict, phones: dict, run: ApiRun,
                  now: datetime) -> int:
        _staging(conn, "stg_los_references", "reference_customers", REFERENCE_COLUMNS)
        _copy(conn, "stg_los_references", REFERENCE_COLUMNS, references.values())
        inserted, updated = upsert_changes(conn, "reference_customers", "stg_los_references",
                                           ("ref_cif",), REFERENCE_COLUMNS,
                                           owner="primary_cif", now=now)
        _staging(conn, "stg_los_phones", "phones", PHONE_COLUMNS)
        _copy(conn, "stg_los_phones", PHONE_COLUMNS, phones.values())
        params = {"now": now}
        conn.execute("""
            DELETE FROM phones p WHERE p.source_system = 'LOS'
              AND p.ref_cif IN (SELECT ref_cif FROM stg_los_references)
              AND NOT EXISTS (SELECT 1 FROM stg_los_phones s
                              WHERE s.ref_cif = p.ref_cif AND s.number = p.number)""")
        conn.execute("""
            UPDATE phones p SET type = s.type, number_e164 = s.number_e164,
                   last_synced_at = %(now)s, updated_at = crm_now()
            FROM stg_los_phones s
            WHERE p.source_system = 'LOS' AND p.ref_cif = s.ref_cif AND p.number = s.number
              AND (p.type, p.number_e164) IS DISTINCT FROM (s.type, s.number_e164)""", params)
        # one primary per type of a referee (a partial unique index): a new LOS number is
        # primary only when the referee has none of its type yet, and only one of them (the
        # lowest number, whatever order the applications came in)
        conn.execute("""
            WITH fresh AS (
                SELECT s.* FROM stg_los_phones s WHERE NOT EXISTS (
                    SELECT 1 FROM phones p WHERE p.source_system = 'LOS'
                      AND p.ref_cif = s.ref_cif AND p.number = s.number)
            )
            INSERT INTO phones (ref_cif, number, type, number_e164, is_primary, is_verified,
                                do_not_contact, source_system, last_synced_at)
            SELECT s.ref_cif, s.number, s.type, s.number_e164,
                   s.is_primary
                   AND NOT EXISTS (SELECT 1 FROM phones p WHERE p.ref_cif = s.ref_cif
                                     AND p.type = s.type AND p.is_primary)
                   AND s.number = (SELECT min(n.number) FROM fresh n WHERE n.ref_cif = s.ref_cif
                                     AND n.type = s.type AND n.is_primary),
                   s.is_verified, s.do_not_contact, 'LOS', %(now)s
            FROM fresh s""", params)
        return inserted + updated

    def finish(self, conn: Connection, run: ApiRun) -> dict:
        """Link applications loaded before their loan arrived from T24."""
        linked = conn.execute("""
            UPDATE loan_applications a
            SET account_number = a.raw->>'loan_account_number',
                raw = a.raw - 'loan_account_number', updated_at = crm_now()
            WHERE a.source_system = 'LOS' AND a.account_number IS NULL
              AND a.raw ? 'loan_account_number'
              AND EXISTS (SELECT 1 FROM loans l
                          WHERE l.account_number = a.raw->>'loan_account_number')""").rowcount
        still = conn.execute("SELECT count(*) FROM loan_applications WHERE account_number IS "
                             "NULL AND raw ? 'loan_account_number'").fetchone()[0]
        return {"linked_later": linked, "unlinked_now": still}


def sync_los(conn: Connection, client: LOSClient, **kwargs) -> ApiRun:
    """One LOS sync run (see ``integrations.api_sync.sync_pages`` for the arguments)."""
    return sync_pages(conn, integration=INTEGRATION,
                      pages=lambda cursor: client.application_pages(cursor=cursor),
                      transform=transform_application, loader=ApplicationLoader(), **kwargs)
