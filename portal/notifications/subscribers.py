"""Event subscribers that notify users. Each runs once per event (portal.events.subscribers);
no commit here."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from werkzeug.routing import BuildError

from portal import clock
from portal.events import subscriber
from portal.models import Case, Customer, Notification, Promise
from portal.notifications.messages import N_, listing, message, money, stored
from portal.notifications.operations import notify

CASE_ENDPOINTS = ("cases.case", "cases.view", "cases.customer", "cases.case_view")


def case_link(cif: str) -> str:
    """The case view of ``cif`` (works without a request: workers build it too)."""
    adapter = current_app.url_map.bind("")
    for endpoint in CASE_ENDPOINTS:
        if endpoint in current_app.view_functions:
            try:
                return adapter.build(endpoint, {"cif": cif})
            except BuildError:
                continue
    return f"/cases/{cif}"


@subscriber("PROMISE_BROKEN", name="notifications.promise_broken")
def promise_broken(event, session) -> None:
    """Tell the promise's agent (else the case's agent) that a promise was broken."""
    data = event.payload
    agent_id = data.get("agent_id")
    promise = session.get(Promise, data["promise_id"])
    if agent_id is None and promise is not None:
        agent_id = promise.agent_id
    if agent_id is None:
        agent_id = session.scalar(select(Case.assigned_agent_id).where(Case.cif == data["cif"]))
    if agent_id is None:
        return
    name = session.scalar(select(Customer.name).where(Customer.cif == data["cif"]))
    currency = promise.currency if promise is not None else "VND"
    amounts = {"promised": money(data["amount"], currency), "day": {"date": data["promised_date"]},
               "paid": money(data["paid_amount"], currency)}
    if data.get("account_number"):
        body = message(N_("%(promised)s promised for %(day)s on loan %(loan)s; %(paid)s paid. "
                          "The case is back at the top of your queue."),
                       loan=data["account_number"], **amounts)
    else:
        body = message(N_("%(promised)s promised for %(day)s; %(paid)s paid. The case is back "
                          "at the top of your queue."), **amounts)
    notify(
        session, agent_id, "promise_broken",
        message(N_("Promise broken: %(name)s"), name=name or data["cif"]), body,
        link=case_link(data["cif"]), cif=data["cif"], event_id=str(event.id),
    )


# Customer fields whose change an agent should hear about (a new balance is on the case anyway).
NOTIFIED_CUSTOMER_FIELDS = {
    "name": N_("name"), "status": N_("status"), "segment": N_("segment"),
    "national_id": N_("national id"), "date_of_birth": N_("date of birth"),
    "phones": N_("phones"), "addresses": N_("addresses"), "emails": N_("emails"),
    "employer": N_("employer"),
}


def _source(data: dict):
    """The system that made a change: its name (data), or "The bank" in the reader's words."""
    return data.get("source_system") or message(N_("The bank"))


def _notify_case_agent(session, cif: str, kind: str, title, body,
                       event_id: str, skip_user: int | None = None) -> None:
    """One unread notice per agent, kind and customer: a later change refreshes the unread one
    instead of piling up (a bank sync can touch a customer several times a day)."""

    agent_id = session.scalar(select(Case.assigned_agent_id).where(Case.cif == cif))
    if agent_id is None or agent_id == skip_user:
        return
    unread = session.scalar(select(Notification).where(
        Notification.user_id == agent_id, Notification.kind == kind, Notification.cif == cif,
        Notification.read_at.is_(None)))
    if unread is not None:
        title, body, unread.message = stored(title, body)
        unread.title, unread.body = title[:200], body
        unread.created_at, unread.event_id = clock.now(), event_id
        return
    notify(session, agent_id, kind, title, body, link=case_link(cif), cif=cif,
           event_id=event_id)


@subscriber("CUSTOMER_UPDATED", name="notifications.customer_changed")
def customer_changed(event, session) -> None:
    """Tell the case's agent that the bank changed the customer's details (not on creation,
    and not for fields an agent does not act on)."""
    data = event.payload
    changes = data.get("changes") or {}
    fields = [message(words) for key, words in NOTIFIED_CUSTOMER_FIELDS.items()
              if key in changes and changes[key].get("old") is not None]
    if not fields:
        return
    name = session.scalar(select(Customer.name).where(Customer.cif == data["cif"]))
    _notify_case_agent(
        session, data["cif"], "customer_changed",
        message(N_("Customer data changed: %(name)s"), name=name or data["cif"]),
        message(N_("%(source)s updated the %(fields)s."), source=_source(data),
                fields=listing(*fields)),
        str(event.id))


CONTACT_NOUNS = {"phone": N_("a phone number"), "address": N_("an address"),
                 "email": N_("an email address")}
CONTACT_OPERATIONS = {"created": N_("created"), "updated": N_("updated"),
                      "deleted": N_("deleted"), "verified": N_("verified")}


@subscriber("CONTACT_UPDATED", name="notifications.contact_changed")
def contact_changed(event, session) -> None:
    """Tell the case's agent when someone else changed the customer's contact details."""
    data = event.payload
    name = session.scalar(select(Customer.name).where(Customer.cif == data["cif"]))
    what = message(CONTACT_NOUNS[data["contact_type"]])
    if data.get("ref_cif"):
        what = message(N_("%(what)s of a reference person"), what=what)
    _notify_case_agent(
        session, data["cif"], "contact_changed",
        message(N_("Contact details changed: %(name)s"), name=name or data["cif"]),
        message(N_("A colleague %(operation)s %(what)s."),
                operation=message(CONTACT_OPERATIONS[data["operation"]]), what=what),
        str(event.id), skip_user=data.get("actor_id"))


PRODUCT_MOVED = {
    "loan": N_("Loan %(key)s moved to another customer"),
    "card": N_("Card %(key)s moved to another customer"),
    "application": N_("Application %(key)s moved to another customer"),
}


@subscriber("PRODUCT_OWNER_CHANGED", name="notifications.product_owner_changed")
def product_owner_changed(event, session) -> None:
    """Tell the agents of both customers' cases that a bank sync gave a product to another
    customer (one notice per agent: the one holding both cases gets one)."""
    data = event.payload
    old_cif, new_cif = data["old_cif"], data["new_cif"]
    names = dict(session.execute(select(Customer.cif, Customer.name)
                                 .where(Customer.cif.in_((old_cif, new_cif)))).all())
    agents = dict(session.execute(select(Case.cif, Case.assigned_agent_id)
                                  .where(Case.cif.in_((old_cif, new_cif)))).all())
    title = message(PRODUCT_MOVED.get(data.get("product"),
                                      N_("Account %(key)s moved to another customer")),
                    key=data["product_key"])
    body = message(N_("%(source)s moved it from %(old_name)s (CIF %(old_cif)s) to %(new_name)s "
                      "(CIF %(new_cif)s). Promises and actions stay with CIF %(old_cif)s; both "
                      "cases were recomputed."),
                   source=_source(data), old_name=names.get(old_cif, ""), old_cif=old_cif,
                   new_name=names.get(new_cif, ""), new_cif=new_cif)
    told: set[int] = set()
    for cif in (old_cif, new_cif):
        agent_id = agents.get(cif)
        if agent_id is None or agent_id in told:
            continue
        told.add(agent_id)
        notify(session, agent_id, "account_moved", title, body, link=case_link(cif), cif=cif,
               event_id=str(event.id))
