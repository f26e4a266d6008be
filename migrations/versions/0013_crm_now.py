"""crm_now(): the product's clock inside PostgreSQL

Stamps the database writes itself (column defaults, ``updated_at`` in the loaders' statements,
the ops queries' "last 24 hours") were taken from ``now()``, the server's clock, while the
product decides by its own (portal.clock), which a test or a demo can start at any instant
(``TEST_CLOCK``). ``crm_now()`` is ``now()`` shifted by the connection's ``crm.clock_offset``
setting, which the product passes on every connection when its clock is shifted (seconds, as
in ``-c crm.clock_offset=63072000``); without it, it is exactly ``now()``. Every column default
of ``now()`` becomes ``crm_now()``, and the time in the ids ``crm_uuid7()`` makes (migration 0009)
is shifted the same way, so they agree with the ids the loaders make in Python.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 17:00:00

"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

CRM_CLOCK_OFFSET = """
CREATE OR REPLACE FUNCTION crm_clock_offset() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(current_setting('crm.clock_offset', true), ''), '0')::float8
           * interval '1 second'
$$"""

CRM_NOW = """
CREATE OR REPLACE FUNCTION crm_now() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT now() + crm_clock_offset() $$"""

UUID7 = """
CREATE OR REPLACE FUNCTION crm_uuid7() RETURNS uuid LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
    bytes bytea := uuid_send(gen_random_uuid());
BEGIN
    bytes := overlay(bytes PLACING substring(int8send(floor(
        extract(epoch FROM clock_timestamp() + {offset}) * 1000)::bigint) FROM 3) FROM 1 FOR 6);
    RETURN encode(set_byte(bytes, 6, (get_byte(bytes, 6) & 15) | 112), 'hex')::uuid;
END
$$
"""


def _set_defaults(old: str, new: str) -> None:
    op.execute(f"""
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT table_name, column_name FROM information_schema.columns
                     WHERE table_schema = current_schema() AND column_default = '{old}'
            LOOP
                EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET DEFAULT {new}',
                               r.table_name, r.column_name);
            END LOOP;
        END $$""")


def upgrade():
    op.execute(CRM_CLOCK_OFFSET)
    op.execute(CRM_NOW)
    op.execute(UUID7.format(offset="crm_clock_offset()"))
    _set_defaults("now()", "crm_now()")


def downgrade():
    _set_defaults("crm_now()", "now()")
    # the function exactly as 0009 created it (so that 0009's downgrade and upgrade agree)
    op.execute(UUID7.replace(" + {offset}", ""))
    op.execute("DROP FUNCTION crm_now()")
    op.execute("DROP FUNCTION crm_clock_offset()")
