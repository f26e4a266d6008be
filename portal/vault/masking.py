"""Masked copies (issue 24 §2): ``flask ops mask-copy --target URL`` copies the database into
another, empty one with every personal value replaced by a deterministic pseudonym of the same
shape (portal/vault/personal.py says where personal values live).

- Same value → same pseudonym, in every table and on every run, keyed by MASKING_KEY (HMAC);
  a different key gives unrelated pseudonyms.
- Keys, amounts, dates and relationships are copied as they are; the schema is the source's
  (pg_dump --schema-only), its constraints are created after the rows are in, so every foreign
  key is checked by PostgreSQL on the copy.
- Documents become one placeholder PDF (rows' size and sha256 are the placeholder's; with
  ``--instance-dir`` the placeholder files are written under it, one per storage key).
- Shapes: a Vietnamese phone stays a valid Vietnamese number of the same network prefix in the
  form it was written in; a national id keeps its length and its first three digits (the
  province); identifiers keep letters, digits and punctuation in place; a name becomes a
  Vietnamese name (Faker vi_VN seeded by the HMAC); an e-mail stays an e-mail; free text
  becomes Vietnamese filler text of the same length.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import subprocess
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from portal.phones import phone_e164
from portal.vault import pgtools
from portal.vault.personal import JSON_KEYS, PERSONAL_COLUMNS

log = logging.getLogger(__name__)

MIN_OCCURRENCE = 4  # shorter values are not searched for inside other text
# Longer values (notes, mostly) are replaced where they stand whole (a JSON string, a column's
# value), not searched for inside other text: the search pattern grows with every character
# it holds, and a note is copied into logs whole.
MAX_OCCURRENCE = 80
BATCH = 2000
TEXT_TYPES = {"text", "character varying", "character"}
JSON_TYPES = {"json", "jsonb"}
EMAIL_DOMAINS = {"gmail.com", "yahoo.com", "yahoo.com.vn", "hotmail.com", "outlook.com",
                 "icloud.com"}


def placeholder_pdf() -> bytes:
    """The one document every masked copy's documents are: a valid one-page PDF."""
    text = b"BT /F1 18 Tf 72 720 Td (Masked copy: document placeholder) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


# coordinates move by up to 0.01 degree (about 1.1 km): a customer's street is no longer
# pinned, the province and the map's clusters stay
COORDINATE_SCALE = Decimal(1_000_000)


class Pseudonyms:
    """Deterministic pseudonyms of the same shape, keyed by a secret."""

    def __init__(self, key: str) -> None:
        from faker import Faker

        self._key = key.encode()
        self._faker = Faker("vi_VN")
        self._cache: dict[tuple[str, str], str] = {}
        self._salt = ""
        # a pseudonym must not be (or hold) a real value of the source: another draw if so
        self.is_real: Callable[[str], bool] = lambda _text: False

    def _bytes(self, kind: str, value: str, n: int = 32) -> bytes:
        message = f"{kind}\0{value}{self._salt}".encode()
        seed = hmac.new(self._key, message, hashlib.sha256).digest()
        return hashlib.shake_256(seed).digest(n) if n > 32 else seed[:n]

    def _seeded(self, kind: str, value: str):
        self._faker.seed_instance(int.from_bytes(self._bytes(kind, value, 8), "big"))
        return self._faker

    def _shape(self, kind: str, value: str, keep: int = 0) -> str:
        """Each digit another digit, each letter another letter of its case; the rest as is."""
        stream = self._bytes(kind, value, max(32, len(value)))
        out = []
        for i, ch in enumerate(value):
            b = stream[i % len(stream)]
            if i < keep or not ch.isascii():
                out.append(ch)
            elif ch.isdigit():
                out.append(str(b % 10))
            elif ch.isupper():
                out.append(chr(ord("A") + b % 26))
            elif ch.islower():
                out.append(chr(ord("a") + b % 26))
            else:
                out.append(ch)
        return "".join(out)

    def __call__(self, kind: str, value):
        if value is None:
            return None
        if kind == "birth_date":
            shift = int.from_bytes(self._bytes(kind, value.isoformat(), 4), "big") % 181 - 90
            return value + timedelta(days=shift) if isinstance(value, date) else value
        if kind == "coordinate":  # a home on the map: moved up to ~1 km, the same way each time
            micro = int.from_bytes(self._bytes(kind, str(value), 4), "big") % 20001 - 10000
            shift = Decimal(micro if micro else 1) / COORDINATE_SCALE
            return (Decimal(str(value)) + shift).quantize(Decimal("0.000001"))
        if not isinstance(value, str) or not value.strip():
            return value
        cached = self._cache.get((kind, value))
        if cached is None:
            make = getattr(self, "_" + kind)
            for attempt in range(100):
                self._salt = f"\0{attempt}" if attempt else ""
                cached = make(value)
                if not self.is_real(cached):
                    break
            self._salt = ""
            self._cache[(kind, value)] = cached
        return cached

    # one method per kind of personal value
    def _name(self, value: str) -> str:
        """Family name, middle name, given name, as Vietnamese names are written (Faker's
        vi_VN ``name()`` puts titles and the given name first); a woman's name stays one (by
        the middle name "Thị" or a given name only women have)."""
        fake = self._seeded("name", value)
        words = value.split()
        if "thị" in (w.lower() for w in words[1:-1]) or (
                words and words[-1] in _FEMALE_ONLY):
            return f"{fake.last_name()} Thị {fake.first_name_female()}"
        return f"{fake.last_name()} {fake.middle_name()} {fake.first_name_male()}"

    def _company(self, value: str) -> str:
        return self._seeded("company", value).company()[:len(value) + 40]

    def _national_id(self, value: str) -> str:
        return self._shape("national_id", value, keep=3 if len(value) >= 9 else 0)

    def _identifier(self, value: str) -> str:
        return self._shape("identifier", value)

    def _phone(self, value: str) -> str:
        """The same network prefix, the last seven digits from the HMAC of the number (keyed by
        its E.164 form, so "0903 123 456" and "+84903123456" get the same pseudonym)."""
        e164 = phone_e164(value)
        if e164 is None:
            return self._shape("phone", value)
        stream = self._bytes("phone", e164)
        digits = [str(b % 10) for b in stream[:7]]
        chars = list(value)
        positions = [i for i, ch in enumerate(chars) if ch.isdigit()][-7:]
        for pos, digit in zip(positions, digits[-len(positions):], strict=True):
            chars[pos] = digit
        return "".join(chars)

    def _email(self, value: str) -> str:
        local, _, domain = value.rpartition("@")
        fake = self._seeded("email", value.lower())
        user = re.sub(r"[^a-z0-9._]", "", fake.user_name().lower()) or "user"
        tag = self._bytes("email", value.lower(), 3).hex()
        domain = domain.lower() if domain.lower() in EMAIL_DOMAINS else "example.com"
        return f"{user}.{tag}@{domain}" if local else f"{user}.{tag}"

    def _address(self, value: str) -> str:
        return self._seeded("address", value).street_address()

    def _full_address(self, value: str) -> str:
        return self._seeded("full_address", value).address().replace("\n", ", ")

    def _text(self, value: str) -> str:
        fake = self._seeded("text", value)
        words = fake.text(max_nb_chars=max(len(value), 20) + 20).replace("\n", " ")
        return words[:max(len(value), 1)].rstrip() or "…"

    def _recipient(self, value: str) -> str:
        return self._email(value) if "@" in value else self._phone(value)

    def _filename(self, value: str) -> str:
        return f"tai-lieu-{self._bytes('filename', value, 4).hex()}.pdf"

    def _json(self, value: str) -> str:
        return value  # JSON columns are walked (Masker.json_value)


def _female_only() -> frozenset[str]:
    from faker.providers.person.vi_VN import Provider

    return frozenset(Provider.first_names_female) - frozenset(Provider.first_names_male)


_FEMALE_ONLY = _female_only()


# A Vietnamese number written inside text: "+84903123456", "84903123456", "0903123456",
# "0903 123 456", "0903.123.456"; the shortest run of digits not followed by another digit
PHONE_IN_TEXT = re.compile(r"(?<![\d+])(?:\+84|84|0)(?:[ .\-]?\d){8,10}?(?!\d)")


def phone_forms(value: str) -> list[str]:
    """The usual ways one phone number is written: as given, "84903123456" (inside
    "+84903123456" too), "0903123456", and as pages show it (portal.phones.phone_national)."""
    from portal.phones import phone_national

    e164 = phone_e164(value)
    if not e164:
        return [value]
    forms = {value, e164[1:], phone_national(value)}
    if e164.startswith("+84"):
        forms.add("0" + e164[3:])
    return sorted(forms)


def trie_pattern(words: list[str]) -> str:
    """One regular expression matching any of ``words`` (longest first), as a trie: fast with
    tens of thousands of words, where a plain alternation is not."""
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = True

    def build(node: dict) -> str:
        prefix = ""
        while len(node) == 1 and "" not in node:  # a chain: no recursion for long notes
            (ch, node), = node.items()
            prefix += re.escape(ch)
        end = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return prefix
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return prefix + (f"(?:{body})?" if end else body)

    return build(trie) if words else r"(?!x)x"


class Masker:
    """Turns source rows into masked rows: registry columns by kind, JSON by key, every other
    text by occurrence of a registered value.

    ``collect`` every registered value of the source first, then ``prepare``: the search for
    real values is built once, and no pseudonym is (or holds) a real value."""

    def __init__(self, key: str) -> None:
        self.pseudonyms = Pseudonyms(key)
        self.replacements: dict[str, str] = {}
        self._collected: dict[str, tuple[str, str]] = {}  # lower form -> (kind, form)
        self.phones: set[str] = set()  # Vietnamese numbers (E.164): found in any written form
        self.whole: dict[str, str] = {}  # long values: replaced where they stand whole
        self.pattern: re.Pattern | None = None

    def collect(self, kind: str, value) -> None:
        if not isinstance(value, str) or kind in ("json", "birth_date"):
            return
        if kind in ("phone", "recipient") and "@" not in value:
            e164 = phone_e164(value)
            if e164 and e164.startswith("+84"):
                self.phones.add(e164)
                return
        if len(value.strip()) >= MIN_OCCURRENCE:
            self._collected.setdefault(value.lower(), (kind, value))

    def _real_phone(self, text: str) -> bool:
        return any(phone_e164(m.group(0)) in self.phones for m in PHONE_IN_TEXT.finditer(text))

    def _phone(self, match: re.Match) -> str:
        found = match.group(0)
        return self.pseudonyms("phone", found) if phone_e164(found) in self.phones else found

    def prepare(self) -> None:
        words = sorted((w for w in self._collected if len(w) <= MAX_OCCURRENCE), key=len,
                       reverse=True)
        self.pattern = re.compile(trie_pattern(words), re.IGNORECASE)
        long = {w for w in self._collected if len(w) > MAX_OCCURRENCE}
        self.pseudonyms.is_real = lambda text: (bool(self.pattern.search(text))
                                                or text.lower() in long
                                                or self._real_phone(text))
        self.replacements = {lower: self.pseudonyms(kind, form)
                             for lower, (kind, form) in self._collected.items()
                             if len(lower) <= MAX_OCCURRENCE}
        self.whole = {lower: self.pseudonyms(kind, form) for lower, (kind, form)
                      in self._collected.items() if len(lower) > MAX_OCCURRENCE}

    def occurrences(self, text: str) -> str:
        if not text or self.pattern is None:
            return text
        if len(text) > MAX_OCCURRENCE and text.lower() in self.whole:
            return self.whole[text.lower()]
        if self.phones:
            text = PHONE_IN_TEXT.sub(self._phone, text)
        return self.pattern.sub(
            lambda m: self.replacements.get(m.group(0).lower(), "*" * len(m.group(0))), text)

    def json_value(self, value, kind: str | None = None):
        if isinstance(value, dict):
            return {k: self.json_value(v, JSON_KEYS.get(k.lower()) if isinstance(k, str)
                                       else None) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(v, kind) for v in value]
        if isinstance(value, str):
            if kind:  # (not learned: the occurrence search is built once, before the copy)
                return self.pseudonyms(kind, value)
            return self.occurrences(value)
        return value

    def json_text(self, text: str | None) -> str | None:
        if text is None:
            return None
        return json.dumps(self.json_value(json.loads(text)), ensure_ascii=False)

    def column(self, kind: str | None, data_type: str) -> Callable:
        """The function that masks one value of a column."""
        if data_type in JSON_TYPES:
            return self.json_text
        if kind:
            return lambda v: self.pseudonyms(kind, v)
        if data_type == "ARRAY":
            return lambda v: [self.occurrences(x) if isinstance(x, str) else x for x in v] \
                if isinstance(v, list) else v
        return self.occurrences


# --- the copy -------------------------------------------------------------------------------


def _tables(conn) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name")]


def _columns(conn, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s AND is_generated = 'NEVER' "
        "ORDER BY ordinal_position", (table,))]


def _key_columns(conn, table: str) -> set[str]:
    """Columns of a primary key, foreign key, unique constraint or unique index: copied as
    they are (a pseudonym there would break what refers to them)."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
        "WHERE c.relname = %(t)s AND a.attnum > 0 AND ("
        " EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype IN ('p', 'f', 'u') AND "
        "  ((k.conrelid = c.oid AND a.attnum = ANY (k.conkey)) OR "
        "   (k.confrelid = c.oid AND a.attnum = ANY (k.confkey))))"
        " OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique "
        "  AND a.attnum = ANY (i.indkey)))", {"t": table})
    return {r[0] for r in rows}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def learn_registry(source, masker: Masker) -> int:
    """Pass one: every registered value of the source, so that it is found in any text and no
    pseudonym is one."""
    learned = 0
    tables = set(_tables(source))
    for table, columns in PERSONAL_COLUMNS.items():
        if table not in tables:
            continue
        present = {c for c, _ in _columns(source, table)}
        for column, kind in columns.items():
            if column not in present or kind in ("json", "birth_date", "coordinate"):
                continue
            with source.cursor(name=f"learn_{table}_{column}") as cur:
                cur.itersize = 5000
                cur.execute(f"SELECT DISTINCT {_ident(column)} FROM {_ident(table)} "
                            f"WHERE {_ident(column)} IS NOT NULL")
                for (value,) in cur:
                    masker.collect(kind, value)
                    learned += 1
    masker.prepare()
    return learned


def copy_table(source, target, table: str, masker: Masker) -> int:
    columns = _columns(source, table)
    keys = _key_columns(source, table)
    registry = PERSONAL_COLUMNS.get(table, {})
    transforms: dict[int, Callable] = {}
    select = []
    for i, (name, data_type) in enumerate(columns):
        kind = registry.get(name)
        maskable = kind or (name not in keys and (
            data_type in TEXT_TYPES | JSON_TYPES or data_type == "ARRAY"))
        if data_type in JSON_TYPES:
            select.append(f"{_ident(name)}::text")
        else:
            select.append(_ident(name))
        if maskable:
            transforms[i] = masker.column(kind, data_type)
    names = ", ".join(_ident(n) for n, _ in columns)
    copy_in = f"COPY {_ident(table)} ({names}) FROM STDIN"
    rows = 0
    with target.cursor() as out, out.copy(copy_in) as cp:
        if not transforms:  # nothing personal can be in it: the rows as they are
            with source.cursor().copy(f"COPY {_ident(table)} ({names}) TO STDOUT") as src:
                for block in src:
                    cp.write(block)
            return source.execute(f"SELECT count(*) FROM {_ident(table)}").fetchone()[0]
        with source.cursor(name=f"copy_{table}") as cur:
            cur.itersize = BATCH
            cur.execute(f"SELECT {', '.join(select)} FROM {_ident(table)}")
            for row in cur:
                row = list(row)
                for i, fn in transforms.items():
                    if row[i] is not None:
                        row[i] = fn(row[i])
                cp.write_row(row)
                rows += 1
    return rows


def _sequences(conn) -> list[tuple[str, int | None, bool]]:
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), last_value, "
        "last_value IS NOT NULL FROM pg_sequences WHERE schemaname = 'public'")]


def mask_copy(source_url: str, target_url: str, key: str, instance_dir: Path | None = None,
              echo: Callable[[str], None] = log.info) -> dict[str, int]:
    """Copy ``source_url`` into the empty ``target_url`` with the personal values masked;
    {table: rows copied}."""
    pgtools.require_empty(target_url)
    pgtools.require_distinct(source_url, target_url)
    source_major, target_major = pgtools.server_major(source_url), pgtools.server_major(
        target_url)
    if source_major != target_major:
        raise pgtools.CopyRefused(f"the source server is PostgreSQL {source_major}, the target "
                                  f"{target_major}: a masked copy needs the same version")
    tools = pgtools.tools_for(source_major)
    target_db = pgtools.params(target_url).get("dbname", "")
    with tempfile.TemporaryDirectory(prefix="mask-copy-") as tmp:
        schema = str(Path(tmp) / "schema.dump")
        pgtools.run([tools.pg_dump, "--format=custom", "--schema-only",
                     "--no-owner", "--no-privileges", "--file", schema], source_url,
                    "pg_dump --schema-only")
        # the target has its own public schema: every entry of the dump but that one
        entries = subprocess.run([tools.pg_restore, "--list", schema], capture_output=True,
                                 text=True, check=True).stdout.splitlines()
        listing = Path(tmp) / "schema.list"
        listing.write_text("\n".join(line for line in entries
                                     if not re.search(r"\bSCHEMA - public\b", line)) + "\n")
        pgtools.run([tools.pg_restore, "--section=pre-data", "--no-owner", "--no-privileges",
                     "--exit-on-error", "--use-list", str(listing), "--dbname", target_db,
                     schema], target_url, "pg_restore (tables)")
        masker = Masker(key)
        counts: dict[str, int] = {}
        with pgtools.connect(source_url) as source, pgtools.connect(target_url) as target:
            # one snapshot of the source for the whole copy
            source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            source.read_only = True
            learned = learn_registry(source, masker)
            echo(f"{learned} personal values to mask")
            for table in _tables(source):
                counts[table] = copy_table(source, target, table, masker)
                echo(f"  {table:<28} {counts[table]:>10,}")
            for name, value, called in _sequences(source):
                if called:
                    target.execute("SELECT setval(%s, %s, true)", (name, value))
            placeholder = placeholder_pdf()
            digest = hashlib.sha256(placeholder).hexdigest()
            if "documents" in counts:
                target.execute("UPDATE documents SET content_type = 'application/pdf', "
                               "size_bytes = %s, sha256 = %s", (len(placeholder), digest))
                if instance_dir is not None:
                    store = instance_dir / "documents"
                    for (key_,) in target.execute("SELECT storage_key FROM documents"):
                        path = store.joinpath(*key_.split("/"))
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(placeholder)
            target.commit()
            source.rollback()
        pgtools.run([tools.pg_restore, "--section=post-data", "--no-owner", "--no-privileges",
                     "--exit-on-error", "--use-list", str(listing), "--dbname", target_db,
                     schema], target_url, "pg_restore (constraints and indexes)")
    return counts
