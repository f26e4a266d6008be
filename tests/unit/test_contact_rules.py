"""Contact rules without a database: window arithmetic, cap release, stored-value parsing."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from portal.cases.contact_rules import (
    ContactRules,
    PromiseRules,
    _cap_release,
    in_window,
    next_window_opening,
)

RULES = ContactRules()  # 07:00–21:00 Asia/Ho_Chi_Minh (UTC+7), 7 calls in 7 days


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("moment", "inside"), [
    (utc(2026, 11, 24, 0, 0), True),     # 07:00 local: the window opens
    (utc(2026, 11, 23, 23, 59), False),  # 06:59 local
    (utc(2026, 11, 24, 13, 59), True),   # 20:59 local
    (utc(2026, 11, 24, 14, 0), False),   # 21:00 local: the end is exclusive
    (utc(2026, 11, 24, 20, 0), False),   # 03:00 local next day
])
def test_window_is_in_the_bank_zone(moment, inside):
    assert in_window(RULES, moment) is inside


def test_next_opening_before_the_window_is_the_same_morning():
    assert next_window_opening(RULES, utc(2026, 11, 23, 22, 0)) == utc(2026, 11, 24, 0, 0)


def test_next_opening_after_the_window_is_the_next_morning():
    # 22:30 local on the 24th → 07:00 local on the 25th
    assert next_window_opening(RULES, utc(2026, 11, 24, 15, 30)) == utc(2026, 11, 25, 0, 0)


def test_next_opening_inside_the_window_is_now():
    moment = utc(2026, 11, 24, 3, 0)
    assert next_window_opening(RULES, moment) == moment


def test_cap_release_is_when_the_oldest_counted_attempt_leaves():
    start = utc(2026, 11, 17, 2, 0)
    attempts = [start + timedelta(hours=6 * i) for i in range(7)]
    assert _cap_release(RULES, attempts) == start + timedelta(days=7)
    assert _cap_release(RULES, attempts[:6]) is None
    # nine attempts: three must leave the window before an eighth call is allowed
    nine = [start + timedelta(hours=i) for i in range(9)]
    assert _cap_release(RULES, nine) == nine[2] + timedelta(days=7)


def test_rules_round_trip_through_json_and_default_missing_keys():
    rules = ContactRules(time(8, 30), time(20, 0), 5, 7)
    assert ContactRules.from_json(rules.as_json()) == rules
    assert ContactRules.from_json({"max_call_attempts": 3}) == ContactRules(max_call_attempts=3)
    assert ContactRules.from_json(None) == ContactRules()
    assert PromiseRules.from_json({}) == PromiseRules(max_days=30)
