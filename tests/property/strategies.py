"""Hypothesis strategies shared by the property tests: hostile text and JSON values."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

# Text a sender may legitimately send (any script, quotes, markup characters, emoji), but
# nothing XML 1.0 cannot carry (control characters, surrogates, non-characters).
NASTY = ["<", ">", "&", "&amp;", "]]>", '"', "'", "\\", "\u2028", "\u00a0", "😀", "Ω", "ǅ",
         "Nguyễn Văn Ả", "'; DROP TABLE loans; --", "<script>alert(1)</script>", "${x}", "%s"]
clean_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=30),
    st.sampled_from(NASTY),
)
# What no database text column can hold: NUL, lone surrogates; plus controls and giants.
# (the T24/W4/LOS transforms refuse them: tests/property/test_t24_load.py)
UNSTORABLE = ["\x00", "a\x00b", "\ud800", "x\udfffy"]
hostile_text = st.one_of(
    st.text(st.characters(blacklist_characters="\x00"), max_size=30),
    st.sampled_from([*NASTY, "\x01\x1f\x7f", "\ufffe", "9" * 5000]))



def _values(text):
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=True, allow_infinity=True), text,
        st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
            lambda d: abs(d.adjusted()) < 40),
        st.sampled_from(["2026-02-30", "20261124", "0001-01-01", "9999-12-31", "1e999", "-0",
                         "NaN", "Infinity", "12.345", "0901234567", "+84901234567", "VND",
                         "OPEN", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
                         10**400, Decimal("1E+30"), Decimal("-1E-30")]),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=4)), max_leaves=8)


hostile_values = _values(hostile_text)
# the same, with NUL and lone surrogates too (for the boundaries that already refuse them)
any_values = _values(st.one_of(hostile_text, st.sampled_from(UNSTORABLE)))

# JSON documents as text: valid or not
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10)
