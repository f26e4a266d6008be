"""Strategies without a database: the condition compiler (whitelist, bound values), the stable
variant draw, and the confidence intervals against values computed by hand / by R."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from portal.strategies.conditions import ConditionError, compile_conditions, validate
from portal.strategies.engine import stable_draw
from portal.strategies.stats import t_quantile, two_proportion, welch


def test_conditions_compile_to_bound_parameters():
    params: dict = {}
    sql = compile_conditions([
        {"field": "dpd", "op": "ge", "value": "31"},
        {"field": "bucket", "op": "in", "value": "31-60, 61-90"},
        {"field": "overdue", "op": "gt", "value": "5.000.000"},
        {"field": "promise_pending", "op": "eq", "value": "false"},
    ], params, "s7")
    assert sql == ("((f.dpd >= CAST(:s7_0 AS int)) AND (f.bucket = ANY(CAST(:s7_1 AS text[])))"
                   " AND (f.overdue > CAST(:s7_2 AS numeric))"
                   " AND (f.promise_pending = CAST(:s7_3 AS boolean)))")
    assert params == {"s7_0": 31, "s7_1": ["31-60", "61-90"], "s7_2": Decimal("5000000"),
                      "s7_3": False}


def test_no_condition_is_every_account():
    assert compile_conditions([], {}, "x") == "TRUE"


@pytest.mark.parametrize(("condition", "part"), [
    ({"field": "dpd; DROP TABLE loans", "op": "eq", "value": "1"}, "field"),
    ({"field": "loans.dpd", "op": "eq", "value": "1"}, "field"),
    ({"field": "dpd", "op": "= 1 OR 1 =", "value": "1"}, "op"),
    ({"field": "promise_pending", "op": "gt", "value": "true"}, "op"),
    ({"field": "dpd", "op": "eq", "value": "1 OR 1=1"}, "value"),
    ({"field": "bucket", "op": "eq", "value": "120+"}, "value"),
    ({"field": "overdue", "op": "gt", "value": "nhiều"}, "value"),
])
def test_anything_outside_the_whitelist_is_refused(condition, part):
    with pytest.raises(ConditionError) as caught:
        compile_conditions([condition], {}, "p")
    assert caught.value.part == part


def test_a_text_value_stays_a_parameter():
    params: dict = {}
    sql = compile_conditions([{"field": "region", "op": "eq", "value": "Hà Nội' OR '1'='1"}],
                             params, "r")
    assert "Hà Nội" not in sql and params["r_0"] == "Hà Nội' OR '1'='1"


def test_validate_types_the_value():
    assert validate({"field": "last_contact_days", "op": "ge", "value": " 14 "})["value"] == 14
    assert validate({"field": "dpd", "op": "le", "value": "-3"})["value"] == -3


def test_draw_is_stable_and_spread():
    assert stable_draw(3, "LN0001") == stable_draw(3, "LN0001")
    expected = int(hashlib.md5(b"3:LN0001").hexdigest()[:8], 16) % 100
    assert stable_draw(3, "LN0001") == expected
    draws = [stable_draw(1, f"LN{i:06d}") for i in range(10_000)]
    below_20 = sum(d < 20 for d in draws) / len(draws)
    assert 0.18 < below_20 < 0.22  # a 20% split gets about 20%
    assert {stable_draw(1, "LN000001"), stable_draw(2, "LN000001")} != {None}


def test_two_proportion_interval_known_values():
    # champion 120/1000, challenger 150/1000: d = 0.03,
    # se = sqrt(.12 × .88 / 1000 + .15 × .85 / 1000) = 0.0152676, z = 1.959964: ± 0.0299241
    ci = two_proportion(120, 1000, 150, 1000)
    assert ci.difference == pytest.approx(0.03)
    assert ci.low == pytest.approx(0.0000759, abs=1e-6)
    assert ci.high == pytest.approx(0.0599241, abs=1e-6)
    assert ci.significant  # only just
    assert not two_proportion(120, 1000, 140, 1000).significant
    assert two_proportion(1, 0, 1, 10) is None


@pytest.mark.parametrize(("df", "exact"), [(5, 2.570582), (10, 2.228139), (30, 2.042272),
                                           (100, 1.983972)])
def test_t_quantile(df, exact):
    assert t_quantile(0.95, df) == pytest.approx(exact, abs=3e-4)


def test_welch_interval_known_values():
    # by hand: means 11 and 15, variances 2.5 and 2.0; se = sqrt(2.5/5 + 2/6) = 0.91287,
    # Welch df = 0.83333² / (0.5²/4 + 0.33333²/5) = 8.197, t(0.975; 8.197) = 2.2975
    # (between the table's 2.306 at 8 and 2.262 at 9): 4 ± 2.0973
    x, y = [10, 12, 9, 11, 13], [14, 15, 13, 17, 16, 15]
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    var = lambda v: sum((a - mean(v)) ** 2 for a in v) / (len(v) - 1)  # noqa: E731
    ci = welch(mean(x), var(x), len(x), mean(y), var(y), len(y))
    assert ci.difference == pytest.approx(4.0)
    assert ci.low == pytest.approx(1.9027, abs=3e-3)
    assert ci.high == pytest.approx(6.0973, abs=3e-3)
    assert ci.significant
    assert welch(1, 1, 1, 2, 1, 5) is None
