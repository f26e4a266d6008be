"""Event subscribers that notify users. Each runs once per event (portal.events.subscribers);
no commit here."""

from __future__ import annotations

from decimal import Decimal

from flask import current_app
from sqlalchemy import select
from werkzeug.routing import BuildError

from portal.events import subscriber
from portal.models import Case, Customer, Promise
from portal.services.notifications import notify

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


def _money(value: str | None, currency: str = "VND") -> str:
    if value is None:
        return "—"
    return f"{Decimal(value):,.0f} {'₫' if currency == 'VND' else currency}"


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
        f"{_money(data['amount'], currency)} promised for {shown_date}{loan}; "
        f"{_money(data['paid_amount'], currency)} paid. The case is back at the top of "
        "your queue.",
        link=case_link(data["cif"]), cif=data["cif"], event_id=str(event.id),
    )
