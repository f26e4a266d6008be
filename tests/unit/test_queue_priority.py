"""The one priority computation of the work queue (portal.cases.queue.compute_priority)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from portal.cases.queue import (
    BROKEN_PROMISE_POINTS,
    FOLLOW_UP_DUE_POINTS,
    PROMISE_DUE_POINTS,
    SILENCE_POINTS_MAX,
    PriorityInputs,
    compute_priority,
)

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
RECENT = NOW - timedelta(hours=2)  # contacted today: no silence points


def p(**kwargs) -> int:
    kwargs.setdefault("max_dpd", 10)
    kwargs.setdefault("total_overdue", Decimal("5000000"))
    kwargs.setdefault("last_contact_at", RECENT)
    return compute_priority(PriorityInputs(**kwargs), NOW)


def test_higher_bucket_ranks_higher():
    assert p(max_dpd=0) < p(max_dpd=15) < p(max_dpd=45) < p(max_dpd=75) < p(max_dpd=120)


def test_same_bucket_more_overdue_ranks_higher_but_cannot_jump_a_bucket():
    assert p(total_overdue=Decimal("50000000")) > p(total_overdue=Decimal("1000000"))
    # a huge amount in 1-30 stays below a small amount in 31-60
    assert p(max_dpd=30, total_overdue=Decimal("900000000000")) < \
        p(max_dpd=31, total_overdue=Decimal("1000000"))


def test_zero_and_negative_overdue_add_nothing():
    assert p(total_overdue=Decimal(0)) == p(total_overdue=Decimal("-5"))


def test_promise_due_and_broken_promises_add_their_weights():
    base = p()
    assert p(promise_due=True) - base == PROMISE_DUE_POINTS
    assert p(broken_promises_30d=1) - base == BROKEN_PROMISE_POINTS
    assert p(broken_promises_30d=5) - base == 2 * BROKEN_PROMISE_POINTS  # capped


def test_follow_up_counts_only_once_reached():
    base = p()
    assert p(next_action_at=NOW - timedelta(minutes=1)) - base == FOLLOW_UP_DUE_POINTS
    assert p(next_action_at=NOW) - base == FOLLOW_UP_DUE_POINTS
    assert p(next_action_at=NOW + timedelta(minutes=1)) == base


@pytest.mark.parametrize(("days", "points"), [(0, 0), (1, 5), (10, 50), (30, 150), (300, 150)])
def test_silence_grows_five_points_a_day_up_to_the_cap(days, points):
    base = p(last_contact_at=NOW)
    assert p(last_contact_at=NOW - timedelta(days=days)) - base == points


def test_never_contacted_counts_as_the_longest_silence():
    assert p(last_contact_at=None) - p(last_contact_at=NOW) == SILENCE_POINTS_MAX


def test_a_fresh_broken_promise_beats_the_next_bucket():
    assert p(max_dpd=20, broken_promises_30d=1) > p(max_dpd=40)


def test_search_folds_vietnamese_accents():
    from portal.cases.search import _PLAIN, _VIET, fold

    assert len(_VIET) == len(_PLAIN)
    assert fold("Nguyễn Thị Ánh Đào") == "nguyen thi anh dao"
    assert fold("TRẦN VĂN MỸ") == "tran van my"
