"""one primary contact per type, normalised phones, one pending promise

Phones: every number gets its E.164 form (``number_e164``: what the call centre dials, what
calls are matched by, what pages format from) where a row still lacks it.

One primary per type: a customer (or a reference person) has at most one primary phone,
address and e-mail of each type — a partial unique index per owner column. Where the data
already holds several, one stays primary, chosen deterministically: the CRM's row (the agents'
latest choice, made beside the bank's read-only row), else the newest row.

One pending promise per account of a customer, and one for the whole customer (a promise made
without an account): a new promise supersedes the pending one (status ``superseded``, with
when, by whom and the promise that replaced it). Where the data already holds several, the
newest stays pending and the older ones are superseded by it (an audit row each, actor
"migration").

Downgrade: the indexes and the superseded columns go; a superseded promise becomes
``cancelled`` (neither kept nor broken, as superseded). Filled E.164 numbers and unset
primaries stay as they are (both were already allowed).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 20:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

CONTACT_TABLES = ("phones", "addresses", "emails")
OWNERS = ("cif", "ref_cif")
STATUSES_BEFORE = ("pending", "kept", "partially_kept", "broken", "cancelled")
STATUSES_AFTER = (*STATUSES_BEFORE, "superseded")

# integrations.fields.phone_e164 in SQL (punctuation out; +84 with a trunk 0 after it; 84…;
# 0… national), for the rows that lack their E.164 form
BACKFILL_E164 = r"""
WITH n AS (
    SELECT id, regexp_replace(number, '[[:space:].()-]', '', 'g') AS d
    FROM phones WHERE number_e164 IS NULL
)
UPDATE phones p SET number_e164 = CASE
        WHEN n.d ~ '^\+840' THEN '+84' || substr(n.d, 5)
        WHEN n.d ~ '^\+' THEN n.d
        WHEN n.d ~ '^84' AND length(n.d) >= 11 THEN '+' || n.d
        WHEN n.d ~ '^0' THEN '+84' || substr(n.d, 2)
    END
FROM n
WHERE p.id = n.id AND n.d ~ '^\+?[0-9]{8,15}$'
  AND (n.d ~ '^\+' OR (n.d ~ '^84' AND length(n.d) >= 11) OR n.d ~ '^0')
"""


def _one_primary(table: str, owner: str) -> str:
    return f"""
        UPDATE {table} t SET is_primary = false, updated_at = crm_now()
        FROM (
            SELECT id, row_number() OVER (
                PARTITION BY {owner}, type
                ORDER BY (source_system = 'CRM') DESC, id DESC) AS rank
            FROM {table} WHERE is_primary AND {owner} IS NOT NULL
        ) ranked
        WHERE t.id = ranked.id AND ranked.rank > 1"""


def _primary_index(table: str, owner: str) -> str:
    return f"uq_{table}_primary_{owner}_type"


# the newest pending promise of each (customer, account) and (customer, no account) stays
SUPERSEDE_DUPLICATES = """
WITH ranked AS (
    SELECT id, first_value(id) OVER w AS keeper, row_number() OVER w AS rank
    FROM promises WHERE status = 'pending'
    WINDOW w AS (PARTITION BY cif, account_number ORDER BY id DESC)
), superseded AS (
    UPDATE promises p SET status = 'superseded', superseded_at = crm_now(),
                          resolved_at = crm_now(), replacement_id = r.keeper,
                          updated_at = crm_now()
    FROM ranked r WHERE p.id = r.id AND r.rank > 1
    RETURNING p.id, p.replacement_id
)
INSERT INTO audit_log (actor_label, action, entity_type, entity_id, before, after)
SELECT 'migration', 'promise.supersede', 'promise', s.id::text,
       jsonb_build_object('status', 'pending'),
       jsonb_build_object('status', 'superseded', 'replacement_id', s.replacement_id)
FROM superseded s
"""


def _status_check(statuses) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade():
    op.execute(BACKFILL_E164)
    for table in CONTACT_TABLES:
        for owner in OWNERS:
            op.execute(_one_primary(table, owner))
            op.create_index(_primary_index(table, owner), table, [owner, "type"], unique=True,
                            postgresql_where=sa.text(f"is_primary AND {owner} IS NOT NULL"))

    op.add_column("promises", sa.Column("superseded_at", sa.DateTime(timezone=True)))
    op.add_column("promises", sa.Column("superseded_by_id", sa.Integer()))
    op.add_column("promises", sa.Column("replacement_id", sa.BigInteger()))
    op.create_foreign_key(op.f("fk_promises_superseded_by_id_users"), "promises", "users",
                          ["superseded_by_id"], ["id"], ondelete="SET NULL")
    op.create_foreign_key(op.f("fk_promises_replacement_id_promises"), "promises", "promises",
                          ["replacement_id"], ["id"], ondelete="SET NULL")
    op.drop_constraint(op.f("ck_promises_status"), "promises", type_="check")
    op.create_check_constraint(op.f("ck_promises_status"), "promises",
                               _status_check(STATUSES_AFTER))
    op.execute(SUPERSEDE_DUPLICATES)
    op.create_index("uq_promises_pending_account", "promises", ["cif", "account_number"],
                    unique=True,
                    postgresql_where=sa.text("status = 'pending' AND account_number IS NOT NULL"))
    op.create_index("uq_promises_pending_customer", "promises", ["cif"], unique=True,
                    postgresql_where=sa.text("status = 'pending' AND account_number IS NULL"))


def downgrade():
    op.drop_index("uq_promises_pending_customer", table_name="promises")
    op.drop_index("uq_promises_pending_account", table_name="promises")
    op.execute("UPDATE promises SET status = 'cancelled' WHERE status = 'superseded'")
    op.drop_constraint(op.f("ck_promises_status"), "promises", type_="check")
    op.create_check_constraint(op.f("ck_promises_status"), "promises",
                               _status_check(STATUSES_BEFORE))
    op.drop_constraint(op.f("fk_promises_replacement_id_promises"), "promises",
                       type_="foreignkey")
    op.drop_constraint(op.f("fk_promises_superseded_by_id_users"), "promises",
                       type_="foreignkey")
    op.drop_column("promises", "replacement_id")
    op.drop_column("promises", "superseded_by_id")
    op.drop_column("promises", "superseded_at")
    for table in reversed(CONTACT_TABLES):
        for owner in reversed(OWNERS):
            op.drop_index(_primary_index(table, owner), table_name=table)
