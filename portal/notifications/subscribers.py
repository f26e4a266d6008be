"""Event subscribers that notify users. Each runs once per event (portal.events.subscribers);
no commit here."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from werkzeug.routing import BuildError

from portal import clock
from portal.events import subscriber
from portal.models import Case, Customer, Notification, Promise
from portal.money import format_money
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
    promised_date = data["promised_date"]
    shown_date = f"{promised_date[8:10]}/{promised_date[5:7]}/{promised_date[0:4]}"
    loan = f" on loan {data['account_number']}" if data.get("account_number") else ""
    notify(
        session, agent_id, "promise_broken",
        f"Promise broken: {name or data['cif']}",
        f"{format_money(data['amount'], currency)} promised for {shown_date}{loan}; "
        f"{format_money(data['paid_amount'], currency)} paid. The case is back at the top of "
        "your queue.",
        link=case_link(data["cif"]), cif=data["cif"], event_id=str(event.id),
    )


# Customer fields whose change an agent should hear about (a new balance is on the case anyway).
NOTIFIED_CUSTOMER_FIELDS = {
    "name": "name", "status": "status", "segment": "segment", "national_id": "national id",
    "date_of_birth": "date of birth", "phones": "phones", "addresses": "addresses",
    "emails": "emails", "employer": "employer",
}


def _notify_case_agent(session, cif: str, kind: str, title: str, body: str,
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
    fields = [label for key, label in NOTIFIED_CUSTOMER_FIELDS.items()
              if key in changes and changes[key].get("old") is not None]
    if not fields:
        return
    name = session.scalar(select(Customer.name).where(Customer.cif == data["cif"]))
    _notify_case_agent(
        session, data["cif"], "customer_changed", f"Customer data changed: {name or data['cif']}",
        f"{data.get('source_system', 'The bank')} updated the {', '.join(fields)}.",
        str(event.id))


@subscriber("CONTACT_UPDATED", name="notifications.contact_changed")
def contact_changed(event, session) -> None:
    """Tell the case's agent when someone else changed the customer's contact details."""
    data = event.payload
    name = session.scalar(select(Customer.name).where(Customer.cif == data["cif"]))
    what = {"phone": "a phone number", "address": "an address", "email": "an email address"}[
        data["contact_type"]]
    _notify_case_agent(
        session, data["cif"], "contact_changed", f"Contact details changed: {name or data['cif']}",
        f"A colleague {data['operation']} {what}"
        f"{' of a reference person' if data.get('ref_cif') else ''}.",
        str(event.id), skip_user=data.get("actor_id"))


PRODUCT_NOUNS = {"loan": "Loan", "card": "Card", "application": "Application"}


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
    noun = PRODUCT_NOUNS.get(data.get("product"), "Account")
    title = f"{noun} {data['product_key']} moved to another customer"
    body = (f"{data.get('source_system', 'The bank')} moved it from {names.get(old_cif, '')} "
            f"(CIF {old_cif}) to {names.get(new_cif, '')} (CIF {new_cif}). Promises and "
            f"actions stay with CIF {old_cif}; both cases were recomputed.")
    told: set[int] = set()
    for cif in (old_cif, new_cif):
        agent_id = agents.get(cif)
        if agent_id is None or agent_id in told:
            continue
        told.add(agent_id)
        notify(session, agent_id, "account_moved", title, body, link=case_link(cif), cif=cif,
               event_id=str(event.id))
