"""check_contact against the database: window, 7-in-7 cap, do-not-contact, next allowed time,
rules changed by the bank."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from portal.cases.contact_rules import (
    ContactRules,
    check_contact,
    get_contact_rules,
    save_contact_rules,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# 10:00 in Ho Chi Minh City on Tuesday 24/11/2026
MORNING = utc(2026, 11, 24, 3, 0)


def test_a_call_inside_the_window_with_few_attempts_is_allowed(db, make_customer, make_phone,
                                                               make_action):
    customer = make_customer()
    phone = make_phone(customer)
    for days in (1, 2, 3):
        make_action(customer, at=MORNING - timedelta(days=days))
    decision = check_contact(db.session, cif=customer.cif, action_type="CALL",
                             phone_id=phone.id, at=MORNING)
    assert decision.allowed
    assert decision.reason is None and decision.next_allowed_at is None


def test_a_call_outside_the_window_is_refused_with_the_next_opening(db, make_customer):
    customer = make_customer()
    late = utc(2026, 11, 24, 15, 30)  # 22:30 local
    decision = check_contact(db.session, cif=customer.cif, action_type="CALL", phone_id=None,
                             at=late)
    assert not decision.allowed
    assert "outside the contact window (07:00–21:00)" in decision.reason
    assert "22:30" in decision.reason
    assert decision.next_allowed_at == utc(2026, 11, 25, 0, 0)  # 07:00 local on the 25th
    assert "Next allowed: 25/11/2026 07:00" in decision.reason


def test_a_visit_is_held_to_the_window_but_an_sms_is_not(db, make_customer):
    customer = make_customer()
    early = utc(2026, 11, 23, 22, 0)  # 05:00 local on the 24th
    visit = check_contact(db.session, cif=customer.cif, action_type="VISIT", phone_id=None,
                          at=early)
    assert not visit.allowed and visit.next_allowed_at == utc(2026, 11, 24, 0, 0)
    sms = check_contact(db.session, cif=customer.cif, action_type="SMS", phone_id=None, at=early)
    assert sms.allowed


def test_the_eighth_call_in_seven_days_is_refused_until_the_oldest_leaves(db, make_customer,
                                                                          make_action):
    customer = make_customer()
    oldest = MORNING - timedelta(days=6, hours=2)  # 08:00 local on the 18th
    make_action(customer, at=oldest)
    for days in range(1, 7):
        make_action(customer, at=MORNING - timedelta(days=days))
    # an eighth call by someone else's customer does not count
    make_action(make_customer(), at=MORNING - timedelta(hours=1))
    decision = check_contact(db.session, cif=customer.cif, action_type="CALL", phone_id=None,
                             at=MORNING)
    assert not decision.allowed
    assert "already been called 7 times in the last 7 days (the limit is 7)" in decision.reason
    assert decision.next_allowed_at == oldest + timedelta(days=7)  # 08:00 local on the 25th
    assert "Next allowed: 25/11/2026 08:00" in decision.reason
    # at that moment the call is allowed again
    assert check_contact(db.session, cif=customer.cif, action_type="CALL", phone_id=None,
                         at=decision.next_allowed_at).allowed


def test_calls_older_than_seven_days_and_other_types_do_not_count(db, make_customer,
                                                                   make_action):
    customer = make_customer()
    for i in range(7):
        make_action(customer, at=MORNING - timedelta(days=7, minutes=i))  # just outside
    for i in range(5):
        make_action(customer, at=MORNING - timedelta(hours=i + 1), type="SMS")
    for i in range(6):
        make_action(customer, at=MORNING - timedelta(days=1, minutes=i))
    assert check_contact(db.session, cif=customer.cif, action_type="CALL", phone_id=None,
                         at=MORNING).allowed


def test_cap_release_outside_the_window_moves_to_the_next_opening(db, make_customer,
                                                                  make_action):
    customer = make_customer()
    oldest = utc(2026, 11, 17, 14, 30)  # 21:30 local on the 17th (an inbound call, say)
    make_action(customer, at=oldest)
    for hours in range(1, 7):
        make_action(customer, at=MORNING - timedelta(hours=hours))
    decision = check_contact(db.session, cif=customer.cif, action_type="CALL", phone_id=None,
                             at=MORNING)
    assert not decision.allowed
    # released at 21:30 local on the 24th, outside the window → 07:00 local on the 25th
    assert decision.next_allowed_at == utc(2026, 11, 25, 0, 0)


def test_a_do_not_contact_number_is_never_allowed(db, make_customer, make_phone):
    customer = make_customer()
    phone = make_phone(customer, number="0912345678", do_not_contact=True)
    for action_type in ("CALL", "SMS"):
        decision = check_contact(db.session, cif=customer.cif, action_type=action_type,
                                 phone_id=phone.id, at=MORNING)
        assert not decision.allowed
        assert "do-not-contact" in decision.reason
        assert "678" in decision.reason and "0912345678" not in decision.reason
        assert decision.next_allowed_at is None


def test_rules_configured_by_the_bank_apply(db, make_customer, make_action, make_user):
    customer = make_customer()
    admin = make_user(role="admin")
    assert get_contact_rules(db.session) == ContactRules()
    save_contact_rules(db.session, ContactRules(time(8, 0), time(20, 0), 2, 7), admin)
    db.session.commit()
    at_0730 = utc(2026, 11, 24, 0, 30)
    decision = check_contact(db.session, cif=customer.cif, action_type="CALL", phone_id=None,
                             at=at_0730)
    assert not decision.allowed and "(08:00–20:00)" in decision.reason
    make_action(customer, at=MORNING - timedelta(days=2))
    make_action(customer, at=MORNING - timedelta(days=1))
    decision = check_contact(db.session, cif=customer.cif, action_type="CALL", phone_id=None,
                             at=MORNING)
    assert not decision.allowed and "(the limit is 2)" in decision.reason
    # both limits at once: the reason names both, the time satisfies both
    both = check_contact(db.session, cif=customer.cif, action_type="CALL", phone_id=None,
                         at=utc(2026, 11, 24, 14, 0))  # 21:00 local
    assert "limit is 2" in both.reason and "outside the contact window" in both.reason
    # the first call (10:00 local on the 22nd) leaves the 7-day window at 10:00 on the 29th
    assert both.next_allowed_at == utc(2026, 11, 29, 3, 0)
