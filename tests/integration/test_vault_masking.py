"""``flask ops mask-copy`` (portal/vault/masking.py): the demo data plus hostile values, copied
into a second database, where (a) no personal value of the source appears in any text or JSON
column of any table, (b) every foreign key holds, (c) row counts and amounts are the source's,
(d) the same value gets the same pseudonym in every table and on every run."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from portal.phones import phone_e164
from portal.vault import masking, pgtools
from portal.vault.personal import PERSONAL_COLUMNS
from tests.vault_support import database_fixture  # noqa: F401 (fixture)

HOSTILE_NAME = 'Nguyễn "Văn" O\'Brien\t\\ 😀 Ánh'
HOSTILE_NID = "079123456789"
HOSTILE_PHONE = "0903 123 456"
HOSTILE_EMAIL = "an.nguyen.thu-no@gmail.com"
HOSTILE_NOTE = 'KH nói: "trả vào thứ 6"\nSĐT khác 0903 123 456; email an.nguyen.thu-no@gmail.com'
HOSTILE_LINE1 = "Số 12/3B Ngõ 45 Đường Láng; DROP TABLE x;--"
AMOUNT_TABLES = {"loans": "outstanding", "payments": "amount", "promises": "amount",
                 "cards": "outstanding", "collaterals": "value"}



def _hostile(db) -> None:
    """Personal values in awkward shapes, and copies of them hidden in payloads and logs."""
    s = db.session
    cif = s.execute(text("SELECT cif FROM customers ORDER BY id LIMIT 1")).scalar()
    s.execute(text("UPDATE customers SET name = :n, national_id = :nid WHERE cif = :cif"),
              {"n": HOSTILE_NAME, "nid": HOSTILE_NID, "cif": cif})
    s.execute(text("UPDATE phones SET number = :p, number_e164 = :e WHERE id = "
                   "(SELECT min(id) FROM phones WHERE cif = :cif)"),
              {"p": HOSTILE_PHONE, "e": phone_e164(HOSTILE_PHONE), "cif": cif})
    s.execute(text("UPDATE emails SET address = :e WHERE id = (SELECT min(id) FROM emails)"),
              {"e": HOSTILE_EMAIL})
    s.execute(text("UPDATE addresses SET line1 = :l WHERE id = (SELECT min(id) FROM addresses)"),
              {"l": HOSTILE_LINE1})
    s.execute(text("UPDATE actions SET notes = :n WHERE id = (SELECT min(id) FROM actions)"),
              {"n": HOSTILE_NOTE})
    s.execute(text(
        "INSERT INTO events (id, seq, type, version, aggregate_type, aggregate_id, payload, "
        "occurred_at) VALUES (:id, 999999, 'CUSTOMER_UPDATED', 1, 'customer', :cif, "
        "CAST(:p AS jsonb), now())"),
        {"id": str(uuid.uuid4()), "cif": cif, "p": json.dumps({
            "cif": cif, "name": HOSTILE_NAME,
            "changes": {"national_id": ["001099104729", HOSTILE_NID]},
            "summary": f"{HOSTILE_NAME} đổi số {phone_e164(HOSTILE_PHONE)}"})})
    s.execute(text(
        "INSERT INTO audit_log (action, entity_type, entity_id, before, after, at) VALUES "
        "('contact.update', 'customer', :cif, CAST(:b AS jsonb), CAST(:a AS jsonb), now())"),
        {"cif": cif, "b": json.dumps({"notes": HOSTILE_NOTE}),
         "a": json.dumps({"value": HOSTILE_EMAIL, "line": HOSTILE_LINE1})})
    s.execute(text(
        "INSERT INTO quarantined_records (integration, entity, reason, raw, payload) VALUES "
        "('T24', 'CUSTOMER', 'bad date', :raw, CAST(:p AS jsonb))"),
        {"raw": f"{cif};{HOSTILE_NAME.upper()};{HOSTILE_NID};0903123456",
         "p": json.dumps({"fields": [HOSTILE_NAME, HOSTILE_NID, "84903123456"]})})
    s.execute(text(
        "INSERT INTO messages (cif, channel, business_date, recipient, body) VALUES "
        "(:cif, 'sms', current_date, '0903123456', :b)"),
        {"cif": cif, "b": f"Kính gửi {HOSTILE_NAME}, vui lòng gọi lại 0903 123 456."})
    s.execute(text(
        "INSERT INTO webhook_receipts (integration, message_id, scheme, body_sha256, "
        "status_code, response, received_at) VALUES ('PAYMENTS', 'm-1', 'crm-hmac', 'x', 400, "
        "CAST(:r AS jsonb), now())"),
        {"r": json.dumps({"error": f"unknown payer {HOSTILE_EMAIL}"})})
    s.execute(text(
        "INSERT INTO documents (cif, kind, storage_key, original_name, content_type, size_bytes, "
        "sha256, uploaded_at) VALUES (:cif, 'id_document', 'ab/0123456789abcdef0123456789abcdef', "
        ":n, 'image/png', 1234, :sha, now())"),
        {"cif": cif, "n": f"CCCD {HOSTILE_NAME}.png", "sha": "ab" * 32})
    s.commit()


def _originals(conn) -> set[str]:
    """Every value of every registered personal column of the source (and each phone in
    every way it is written), 4 characters or longer."""
    found: set[str] = set()
    for table, columns in PERSONAL_COLUMNS.items():
        for column, kind in columns.items():
            if kind in ("json", "birth_date", "coordinate"):
                continue
            for (value,) in conn.execute(f'SELECT DISTINCT "{column}" FROM "{table}" '
                                         f'WHERE "{column}" IS NOT NULL'):
                forms = masking.phone_forms(value) if kind == "phone" else [value]
                found |= {f for f in forms if len(f.strip()) >= masking.MIN_OCCURRENCE}
    return found


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _corpus(conn) -> str:
    """Every text, JSON string and array element of every table, lowercased, in one string."""
    columns = conn.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND data_type IN "
        "('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY') "
        "AND table_name IN (SELECT table_name FROM information_schema.tables "
        "                   WHERE table_type = 'BASE TABLE')").fetchall()
    assert len(columns) > 200, "the scan found too few text columns"
    parts = []
    for schema, table, column, data_type in columns:
        expr = f'"{column}"::text' if data_type in ("json", "jsonb") else f'"{column}"'
        for (value,) in conn.execute(f'SELECT {expr} FROM "{schema}"."{table}" '
                                     f'WHERE "{column}" IS NOT NULL'):
            if data_type in ("json", "jsonb"):
                parts.extend(_strings(json.loads(value)))
            elif isinstance(value, list):
                parts.extend(str(v) for v in value)
            else:
                parts.append(value)
    return "\x00".join(parts).lower()


def _mask(app, target: str, *extra: str):
    result = app.test_cli_runner().invoke(args=["ops", "mask-copy", "--target", target, *extra])
    return result


def test_masked_copy_hides_every_personal_value_and_keeps_keys_and_amounts(
        app, db, database, tmp_path):
    assert app.test_cli_runner().invoke(
        args=["seed-demo", "--customers", "80", "--loans", "120"]).exit_code == 0
    db.session.rollback()
    _hostile(db)
    source_url = app.config["SQLALCHEMY_DATABASE_URI"]
    target, again = database("masked"), database("masked2")

    result = _mask(app, target, "--instance-dir", str(tmp_path / "instance"))
    assert result.exit_code == 0, result.output
    assert _mask(app, again).exit_code == 0

    with pgtools.connect(source_url) as src, pgtools.connect(target) as copy, \
            pgtools.connect(again) as copy2:
        originals = _originals(src)
        assert {HOSTILE_NAME, HOSTILE_NID, HOSTILE_PHONE, HOSTILE_EMAIL, HOSTILE_NOTE,
                HOSTILE_LINE1} <= originals
        assert len(originals) > 500
        # (a) not one original value, anywhere in the copy
        corpus = _corpus(copy)
        leaked = sorted(v for v in originals if v.lower() in corpus)
        assert not leaked, f"{len(leaked)} personal values survived, e.g. {leaked[:10]}"

        # (b) every foreign key: the source's constraints are there, validated, and hold
        def fks(conn):
            return sorted(conn.execute(
                "SELECT conrelid::regclass::text, conname, convalidated FROM pg_constraint "
                "WHERE contype = 'f' AND connamespace = 'public'::regnamespace").fetchall())
        assert fks(copy) == fks(src) and all(valid for *_, valid in fks(copy))
        assert len(fks(copy)) > 50
        for table, name, _ in fks(copy):
            cols, ref, refcols = copy.execute(
                "SELECT (SELECT array_agg(attname ORDER BY k.n) FROM unnest(c.conkey) WITH "
                "ORDINALITY k(a, n) JOIN pg_attribute ON attrelid = c.conrelid AND attnum = k.a),"
                " c.confrelid::regclass::text, (SELECT array_agg(attname ORDER BY k.n) FROM "
                "unnest(c.confkey) WITH ORDINALITY k(a, n) JOIN pg_attribute ON attrelid = "
                "c.confrelid AND attnum = k.a) FROM pg_constraint c WHERE conname = %s AND "
                "conrelid = %s::regclass", (name, table)).fetchone()
            join = " AND ".join(f'p."{r}" = t."{c}"' for c, r in zip(cols, refcols, strict=True))
            present = " AND ".join(f't."{c}" IS NOT NULL' for c in cols)
            orphans = copy.execute(f"SELECT count(*) FROM {table} t WHERE {present} AND NOT "
                                   f"EXISTS (SELECT 1 FROM {ref} p WHERE {join})").fetchone()[0]
            assert orphans == 0, f"{name}: {orphans} rows point at nothing"

        # (c) the same rows, the same amounts, the same keys
        tables = [r[0] for r in src.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            n = src.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            assert copy.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == n, table
        for table, column in AMOUNT_TABLES.items():
            query = f'SELECT sum("{column}"), count(DISTINCT "{column}") FROM "{table}"'
            assert copy.execute(query).fetchone() == src.execute(query).fetchone()
        keys = "SELECT cif, type, status, segment FROM customers ORDER BY id"
        assert copy.execute(keys).fetchall() == src.execute(keys).fetchall()
        assert copy.execute("SELECT count(*) FROM customers c JOIN loans l USING (cif)"
                            ).fetchone() == src.execute(
            "SELECT count(*) FROM customers c JOIN loans l USING (cif)").fetchone()

        # shapes: a valid Vietnamese phone of the same network, national ids of the same
        # length and province, e-mails, documents as the placeholder
        pairs = zip(src.execute("SELECT number, number_e164 FROM phones ORDER BY id"),
                    copy.execute("SELECT number, number_e164 FROM phones ORDER BY id"),
                    strict=True)
        for (number, e164), (m_number, m_e164) in pairs:
            assert phone_e164(m_number) == m_e164 and m_e164[:5] == e164[:5], (number, m_number)
            assert len(m_number) == len(number) and m_number != number
        for (nid,), (m_nid,) in zip(
                src.execute("SELECT national_id FROM customers ORDER BY id"),
                copy.execute("SELECT national_id FROM customers ORDER BY id"), strict=True):
            if nid:
                assert re.sub(r"\d", "9", m_nid) == re.sub(r"\d", "9", nid) and m_nid != nid
                assert m_nid[:3] == nid[:3]
        for (address,) in copy.execute("SELECT address FROM emails"):
            assert re.fullmatch(r"[a-z0-9._]+\.[0-9a-f]{6}@[a-z0-9.-]+\.[a-z]+", address)
        placeholder = masking.placeholder_pdf()
        doc = copy.execute("SELECT storage_key, size_bytes, sha256, content_type, "
                           "original_name FROM documents").fetchone()
        assert doc[1:4] == (len(placeholder), masking.hashlib.sha256(placeholder).hexdigest(),
                            "application/pdf")
        assert (tmp_path / "instance" / "documents" / "ab" / doc[0][3:]).read_bytes() \
            == placeholder

        # a customer's place on the map moves (up to 0.01 degree), never stays
        moved = list(zip(src.execute("SELECT lat, lon FROM addresses WHERE lat IS NOT NULL "
                                     "ORDER BY id"),
                         copy.execute("SELECT lat, lon FROM addresses WHERE lat IS NOT NULL "
                                      "ORDER BY id"), strict=True))
        assert len(moved) > 20
        for (lat, lon), (masked_lat, masked_lon) in moved:
            assert lat != masked_lat and lon != masked_lon
            assert abs(lat - masked_lat) <= Decimal("0.01") >= abs(lon - masked_lon)

        # (d) the same value, the same pseudonym: across tables and runs
        masked_name = copy.execute("SELECT name FROM customers ORDER BY id LIMIT 1").fetchone()[0]
        event = copy.execute("SELECT payload FROM events WHERE seq = 999999").fetchone()[0]
        assert event["name"] == masked_name and masked_name in event["summary"]
        body = copy.execute("SELECT body FROM messages").fetchone()[0]
        assert masked_name in body
        phone_id = src.execute("SELECT id FROM phones WHERE number = %s",
                               (HOSTILE_PHONE,)).fetchone()[0]
        masked_phone = copy.execute("SELECT number FROM phones WHERE id = %s",
                                    (phone_id,)).fetchone()[0]
        assert masked_phone.replace(" ", "") in body.replace(" ", "")
        contacts = copy.execute(
            "SELECT r.contacts ->> 'phone', p.number FROM reference_customers r JOIN phones p "
            "ON p.ref_cif = r.ref_cif WHERE r.contacts ->> 'phone' IS NOT NULL LIMIT 20"
        ).fetchall()
        source_contacts = src.execute(
            "SELECT r.contacts ->> 'phone', p.number FROM reference_customers r JOIN phones p "
            "ON p.ref_cif = r.ref_cif WHERE r.contacts ->> 'phone' IS NOT NULL LIMIT 20"
        ).fetchall()
        for (c_src, p_src), (c_copy, p_copy) in zip(source_contacts, contacts, strict=True):
            assert (c_copy == p_copy) == (c_src == p_src)
        for table, column in (("customers", "name"), ("phones", "number"),
                              ("emails", "address"), ("actions", "notes")):
            query = f'SELECT "{column}" FROM "{table}" ORDER BY id'
            assert copy.execute(query).fetchall() == copy2.execute(query).fetchall()


def test_mask_copy_refuses_a_target_that_is_not_empty_or_is_the_source(app, db, database):
    source = app.config["SQLALCHEMY_DATABASE_URI"]
    result = _mask(app, pgtools.libpq_url(source))
    assert result.exit_code == 1 and "is not empty" in result.output
    target = database("busy")
    with pgtools.connect(target) as conn:
        conn.execute("CREATE TABLE keep_me (id int)")
        conn.commit()
    result = _mask(app, target)
    assert result.exit_code == 1 and "is not empty" in result.output
    assert "public.keep_me" in result.output
    with pytest.raises(pgtools.CopyRefused, match="is the source database itself"):
        pgtools.require_distinct(source, source.replace("127.0.0.1", "localhost"))


def test_pseudonyms_are_keyed_and_keep_their_shape():
    one, same, other = (masking.Pseudonyms("k1"), masking.Pseudonyms("k1"),
                        masking.Pseudonyms("k2"))
    for kind, value in (("name", "Nguyễn Thị Lan"), ("phone", "+84903123456"),
                        ("national_id", "001099104729"), ("email", "lan@gmail.com"),
                        ("text", "Khách hẹn trả thứ sáu"), ("identifier", "51H-123.45")):
        assert one(kind, value) == same(kind, value) != value
        assert one(kind, value) != other(kind, value)
    assert " Thị " in one("name", "Nguyễn Thị Lan")
    assert re.fullmatch(r"\d\d[A-Z]-\d{3}\.\d\d", one("identifier", "51H-123.45"))
    assert one("phone", "0903 123 456").replace(" ", "")[1:] == one("phone", "+84903123456")[3:]
    assert phone_e164(one("phone", "0903123456")).startswith("+8490")


LOOKS_PERSONAL = re.compile(r"name|phone|mail|address|note|national|contact|recipient|employer|"
                            r"description|reason|text|body|tax|plate|chassis|engine|certificate|"
                            r"birth|registration")


def test_every_column_that_looks_personal_is_classified(db):
    """A new column named like a personal value must be registered (or said not to be)."""
    from portal.vault.personal import NOT_PERSONAL

    every = {f"{t}.{c}" for t, c in db.session.execute(text(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
        "'public' AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'date', "
        "'numeric')"))}
    looks = {name for name in every if LOOKS_PERSONAL.search(name.split(".")[1])}
    registered = {f"{t}.{c}" for t, cols in PERSONAL_COLUMNS.items() for c in cols}
    assert looks - registered - NOT_PERSONAL == set()
    assert registered <= every, "the registry names a column that does not exist"
