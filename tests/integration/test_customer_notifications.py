"""The agent hears when the bank or a colleague changes their customer's details."""

from __future__ import annotations

from sqlalchemy import select

from portal.events import publish
from portal.events.subscribers import deliver
from portal.models import Notification


def _event(db, type_, payload):
    event = publish(type_, payload, session=db.session)
    db.session.commit()
    return event


def _inbox(db, user):
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                                   .order_by(Notification.id)))


def test_a_bank_change_notifies_the_case_agent_once_while_unread(db, ws_case, make_user):
    agent = make_user("agent")
    case = ws_case(agent)
    change = {"cif": case.cif, "source_system": "T24",
              "changes": {"phones": {"old": ["0901"], "new": ["0902"]},
                          "segment": {"old": "MASS", "new": "AFFLUENT"}}}
    first = _event(db, "CUSTOMER_UPDATED", change)
    assert deliver(db.session, first.id, "notifications.customer_changed") == "delivered"
    db.session.commit()
    [notice] = _inbox(db, agent)
    assert notice.kind == "customer_changed" and notice.cif == case.cif
    assert notice.body == "T24 updated the segment, phones."
    assert notice.link == f"/cases/{case.cif}"
    # a second change while the first is unread refreshes it
    second = _event(db, "CUSTOMER_UPDATED", {**change, "changes": {
        "name": {"old": "A", "new": "B"}}})
    deliver(db.session, second.id, "notifications.customer_changed")
    db.session.commit()
    [notice] = _inbox(db, agent)
    assert notice.body == "T24 updated the name." and notice.event_id == str(second.id)


def test_new_customers_and_balance_only_changes_are_quiet(db, ws_case, make_user):
    agent = make_user("agent")
    case = ws_case(agent)
    created = _event(db, "CUSTOMER_UPDATED", {"cif": case.cif, "source_system": "T24",
                                               "changes": {"name": {"old": None, "new": "A"}}})
    other = _event(db, "CUSTOMER_UPDATED", {"cif": case.cif, "source_system": "T24",
                                             "changes": {"risk_grade": {"old": "A", "new": "B"}}})
    for event in (created, other):
        deliver(db.session, event.id, "notifications.customer_changed")
    db.session.commit()
    assert _inbox(db, agent) == []


def test_a_colleagues_contact_change_notifies_but_the_agents_own_does_not(db, ws_case,
                                                                           make_user):
    agent, colleague = make_user("agent"), make_user("field_agent")
    case = ws_case(agent)
    own = _event(db, "CONTACT_UPDATED", {"cif": case.cif, "contact_type": "phone",
                                          "operation": "created", "actor_id": agent.id})
    theirs = _event(db, "CONTACT_UPDATED", {"cif": case.cif, "contact_type": "address",
                                             "operation": "verified", "actor_id": colleague.id})
    for event in (own, theirs):
        deliver(db.session, event.id, "notifications.contact_changed")
    db.session.commit()
    [notice] = _inbox(db, agent)
    assert notice.kind == "contact_changed" and notice.body == "A colleague verified an address."
