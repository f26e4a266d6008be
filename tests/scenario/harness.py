"""A bank's business day played against the portal, step by step, through the real entry points:
the T24 file inbox and loader, the W4 and LOS syncs over HTTP, agents using the web routes, the
call centre's signed CTI events, the payment system's signed webhooks to a live server, field
agents' phones, the nightly broken-promise job and the reconciliation with the payment system's
report. Jobs run on real RQ workers (in-process burst workers; the fault tests also start
``flask workers run`` processes).

``Day.run(hooks)`` plays :data:`STEPS` in order; ``hooks["before_<step>"]`` /
``hooks["after_<step>"]`` (a callable taking the day) is where a fault test breaks something.
What the day did — what the sources hold — is kept on the day for the invariants
(tests/scenario/invariants.py).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text

from tests.integration.test_events_support import drain

STEPS = ("t24_full_load", "open_cases", "sync_w4_los", "agents_work", "calls", "payments",
         "field_day", "nightly", "reconcile")
QUEUES = ("events", "default", "integrations")
API_KEYS = {"W4": "scenario-w4-key", "LOS": "scenario-los-token",
            "PAYMENTS": "test-payments-key", "CTI": "scenario-cc-key", "GPS": "scenario-gps-key"}
SECRETS = {"PAYMENTS": "test-payments-current", "CTI": "scenario-cti-secret"}
POISON_SUBSCRIBER = "scenario.ledger_export"
POISON_REASON = "scenario: poisoned on purpose"
SUPPORT = "tests.scenario.harness:register_poison_subscriber"
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def register_poison_subscriber() -> None:
    """A downstream export of failed payments that refuses one payment, whatever is tried: the
    scenario's one dead letter on purpose (also loaded by worker processes through
    EVENT_SUBSCRIBER_MODULES)."""
    from portal.events.subscribers import register

    def export(event, session):
        if event.payload.get("reason") == POISON_REASON:
            raise RuntimeError("the ledger export refuses this payment (poisoned on purpose)")

    register(export, "PAYMENT_FAILED", name=POISON_SUBSCRIBER)


@dataclass
class Systems:
    """The running sandboxes (ServerThread by system name) and the live portal's URL."""

    servers: dict
    portal_url: str
    portfolio: dict[str, list[dict]]

    def url(self, name: str) -> str:
        return self.servers[name].url

    def faults(self, name: str, **knobs) -> dict:
        response = requests.put(self.url(name) + "/_sandbox/faults", json=knobs, timeout=10)
        assert response.ok, response.text
        return response.json()

    @property
    def payments(self):
        return self.servers["PAYMENTS"].app.extensions["payments_sandbox"]

    @property
    def centre(self):
        return self.servers["CTI"].app.extensions["callcentre"]

    @property
    def gps(self):
        return self.servers["GPS"].app.extensions["sandbox"]


@dataclass
class Record:
    """What the sources and the people did during the day (the test's own bookkeeping)."""

    loans: dict[str, dict] = field(default_factory=dict)  # T24 file: account -> record
    cards: dict[str, dict] = field(default_factory=dict)  # W4: contract -> record
    applications: dict[str, dict] = field(default_factory=dict)  # LOS: id -> record
    promises: int = 0  # promises the agents took
    actions: int = 0  # actions the agents recorded
    refused: list[str] = field(default_factory=list)  # actions the portal refused (422)
    calls: list[dict] = field(default_factory=list)  # the call centre's calls
    checkins: list[dict] = field(default_factory=list)
    positions_posted: int = 0
    poison_reference: str | None = None
    webhooks: dict = field(default_factory=dict)  # the payment system's delivery counters
    sync_runs: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))


class Day:
    def __init__(self, app, db, systems: Systems, sizes, *, inbox: Path, today: date,
                 morning: datetime, make_user, make_team, freeze: Callable):
        from integrations.sandbox.los_server import seed_applications
        from integrations.sandbox.t24_files import SeedSource
        from integrations.sandbox.w4_server import seed_cards

        self.app, self.db, self.systems, self.sizes = app, db, systems, sizes
        self.inbox, self.today, self.morning = Path(inbox), today, morning
        self.make_user, self.make_team, self.freeze = make_user, make_team, freeze
        self.rng = random.Random(2026)
        self.record = Record()
        self.source = SeedSource(sizes.customers, sizes.products, business_date=today)
        systems.portfolio["cards"] = seed_cards(sizes.customers, sizes.products,
                                                business_date=today)
        systems.portfolio["applications"] = seed_applications(sizes.customers, sizes.products,
                                                              business_date=today)
        self.record.cards = {c["contract_number"]: c for c in systems.portfolio["cards"]}
        self.record.applications = {a["application_id"]: a
                                    for a in systems.portfolio["applications"]}
        for name in ("W4", "LOS"):
            assert requests.post(systems.url(name) + "/_sandbox/reset", timeout=60).ok
        self.agents: list = []
        self.field_agents: list = []
        self.outbox = self.inbox.parent / "t24-sender"  # where T24 writes before sending
        self.timings: dict[str, float] = {}

    # -- running --------------------------------------------------------------------------------
    def run(self, hooks: dict[str, Callable[[Day], None]] | None = None) -> Day:
        hooks = hooks or {}
        unknown = set(hooks) - {f"{w}_{s}" for s in STEPS for w in ("before", "after")}
        assert not unknown, f"no such step: {unknown}"
        for step in STEPS:
            started = time.perf_counter()
            if f"before_{step}" in hooks:
                hooks[f"before_{step}"](self)
            getattr(self, step)()
            if f"after_{step}" in hooks:
                hooks[f"after_{step}"](self)
            self.timings[step] = round(time.perf_counter() - started, 2)
        print(f"scenario day {self.sizes}: seconds per step {self.timings}; "
              f"webhooks {self.record.webhooks}")
        return self

    def work(self, timeout: float = 600) -> None:
        """Burst RQ workers until nothing is queued, scheduled or running on any queue."""
        drain(self.app, queues=QUEUES, timeout=timeout)
        self.db.session.rollback()

    def sql(self, query: str, **params):
        result = self.db.session.execute(text(query), params)
        return result

    # -- T24 -------------------------------------------------------------------------------------
    def write_t24_set(self) -> Path:
        """T24 writes the day's full set in its own directory (manifest last); the loans it
        sent are the source of truth for the balances."""
        from integrations.sandbox.t24_files import generate_day

        shutil.rmtree(self.outbox, ignore_errors=True)
        manifest = generate_day(self.outbox, self.source)
        loans = next(self.outbox.glob("t24_loans_*"))
        with loans.open(encoding="utf-8") as fp:
            self.record.loans = {r["account_number"]: r for r in map(json.loads, fp)}
        return manifest

    def send_t24_set(self) -> None:
        """The transfer into the inbox: data files first, the manifest last."""
        target = self.inbox / "inbox"
        target.mkdir(parents=True, exist_ok=True)
        files = sorted(self.outbox.iterdir(), key=lambda p: p.name.startswith("t24_manifest"))
        for path in files:
            shutil.copyfile(path, target / (path.name + ".part"))
            (target / (path.name + ".part")).rename(target / path.name)

    def sync(self, integration: str) -> str:
        from integrations.sync import trigger

        return trigger(integration)

    def t24_full_load(self) -> None:
        self.write_t24_set()
        self.send_t24_set()
        self.sync("T24")
        self.work()
        self.assert_last_run("T24", "succeeded")

    def assert_last_run(self, integration: str, status: str) -> None:
        run = self.sql("SELECT id, status, errors FROM integration_runs WHERE integration = :i "
                       "ORDER BY id DESC LIMIT 1", i=integration).first()
        self.db.session.rollback()
        assert run is not None and run.status == status, (integration, run)

    # -- people and cases ------------------------------------------------------------------------
    def open_cases(self) -> None:
        """The collection team of the day and a case per customer with an overdue loan, shared
        round-robin among the call agents (what the seed and the supervisors do)."""
        from portal.cases.queue import recompute_case_totals, recompute_priorities
        from portal.models import Case

        db = self.db
        team = self.make_team(name="Scenario collections")
        supervisor = self.make_user(role="supervisor", team_id=team.id)
        team.supervisor_id = supervisor.id
        self.agents = [self.make_user(role="agent", team_id=team.id,
                                      cti_agent_id=f"CTI-{3001 + i}",
                                      phone_extension=str(3001 + i))
                       for i in range(self.sizes.agents)]
        self.field_agents = [self.make_user(role="field_agent", team_id=team.id)
                             for _ in range(self.sizes.field_agents)]
        db.session.commit()
        self.sql("INSERT INTO cases (cif) SELECT DISTINCT cif FROM loans WHERE status = 'OPEN' "
                 "AND dpd > 0 AND due_amount > 0 ON CONFLICT DO NOTHING")
        ids = [i for (i,) in self.sql("SELECT id FROM cases ORDER BY cif")]
        for n, case_id in enumerate(ids):
            self.sql("UPDATE cases SET assigned_agent_id = :a WHERE id = :c",
                     a=self.agents[n % len(self.agents)].id, c=case_id)
        recompute_case_totals(db.session, ids)
        recompute_priorities(db.session, ids, now=self.morning)
        # field agents: the cases of customers with a located home address
        # (those nearest the centre of Ho Chi Minh City: a field agent works one city, and
        # rides between their customers in a day; a position that jumps is implausible)
        located = [cif for (cif,) in self.sql(
            "SELECT h.cif FROM (SELECT DISTINCT ON (a.cif) a.cif, a.lat, a.lon FROM addresses a "
            "JOIN cases c ON c.cif = a.cif WHERE a.lat IS NOT NULL AND a.cif IS NOT NULL "
            "ORDER BY a.cif, a.is_primary DESC) h "
            "ORDER BY (h.lat - 10.7769) ^ 2 + (h.lon - 106.7009) ^ 2, h.cif LIMIT :n",
            n=self.sizes.field_agents * self.sizes.visits_per_field_agent)]
        for n, cif in enumerate(located):
            self.sql("UPDATE cases SET assigned_field_agent_id = :a WHERE cif = :c",
                     a=self.field_agents[n % len(self.field_agents)].id, c=cif)
        db.session.commit()
        assert len(ids) >= self.sizes.agents * self.sizes.cases_per_agent, "too few cases"
        assert db.session.query(Case).count() == len(ids)

    # -- W4 and LOS ------------------------------------------------------------------------------
    def sync_w4_los(self) -> None:
        self.sync("W4")
        self.sync("LOS")
        self.work()  # whether they succeeded is for the invariants (cards, applications)

    # -- the agents ------------------------------------------------------------------------------
    def _client(self, user):
        client = self.app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = str(user.get_id())
            session["_fresh"] = True
        return client

    def agents_work(self) -> None:
        """Every agent opens their queue, takes the next case, reads it and records an action:
        a promise to pay on two calls out of three, no answer on the others."""
        from portal.models import ActionCode

        codes = {(c.type, c.subtype, c.result): c.id
                 for c in self.db.session.query(ActionCode).all()}
        ptp, no_answer = codes[("CALL", "OUTBOUND", "PTP")], codes[("CALL", "OUTBOUND",
                                                                   "NO_ANSWER")]
        for agent in self.agents:
            client = self._client(agent)
            assert client.get("/cases/").status_code == 200
            for k in range(self.sizes.cases_per_agent):
                opened = client.post("/cases/next", headers={"X-CSRFToken": self._csrf(client)})
                assert opened.status_code == 302, opened.status_code
                cif = opened.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
                page = client.get(f"/cases/{cif}")
                assert page.status_code == 200
                token = CSRF.search(page.get_data(as_text=True)).group(1)
                loan = self.sql("SELECT account_number, due_amount FROM loans WHERE cif = :c "
                                "AND status = 'OPEN' AND due_amount > 0 ORDER BY due_amount "
                                "DESC LIMIT 1", c=cif).first()
                phone = self.sql("SELECT id FROM phones WHERE cif = :c AND NOT do_not_contact "
                                 "ORDER BY is_primary DESC, id LIMIT 1", c=cif).scalar()
                self.db.session.rollback()
                form = {"type": "CALL", "subtype": "OUTBOUND", "phone_id": phone or "",
                        "follow_up_date": "", "notes": f"scenario call {k}"}
                promise = loan is not None and self.rng.random() < 2 / 3
                if promise:
                    amount = max(Decimal(100_000), (loan.due_amount / 2).quantize(
                        Decimal(1000)))
                    # a whole number of đồng, as an agent types it; a promise still pending on
                    # the loan is replaced, as the form offers
                    form.update(action_code_id=ptp, account_number=loan.account_number,
                                promise_amount=str(int(min(amount, loan.due_amount))),
                                replace_pending="1",
                                promise_date=(self.today + timedelta(
                                    days=self.rng.choice((0, 0, 1, 3)))).isoformat())
                else:
                    form.update(action_code_id=no_answer)
                response = client.post(f"/cases/{cif}/actions", data=form, headers={
                    "X-CSRFToken": token, "HX-Request": "true", "HX-Target": "action-form"})
                if response.status_code == 422:  # a contact rule: the agent moves on
                    self.record.refused.append(cif)
                    continue
                assert response.status_code == 200, response.get_data(as_text=True)[:500]
                self.record.actions += 1
                self.record.promises += promise

    def _csrf(self, client) -> str:
        return CSRF.search(client.get("/cases/").get_data(as_text=True)).group(1)

    # -- the call centre -------------------------------------------------------------------------
    def calls(self) -> None:
        """The call centre's traffic for every agent, posted as signed CTI events."""
        phones = [n for (n,) in self.sql(
            "SELECT p.number_e164 FROM phones p JOIN cases c ON c.cif = p.cif "
            "WHERE p.number_e164 IS NOT NULL ORDER BY p.id LIMIT 200")]
        self.db.session.rollback()
        result = self.systems.centre.simulate(
            agents=[a.cti_agent_id for a in self.agents], phones=phones,
            minutes=self.sizes.call_minutes, seed=3, unknown_rate=0.05,
            end=self.morning - timedelta(seconds=5))
        self.record.calls = result["calls"]  # the call centre's truth, whatever reached us
        self.work()

    # -- payments --------------------------------------------------------------------------------
    def payment_items(self) -> list[dict]:
        """The day's payments: first towards the loans promises were taken on (in full or in
        part), then on other delinquent loans; a few failed attempts, one of them poisoned."""
        sizes, rng = self.sizes, self.rng
        promised = self.sql("SELECT cif, account_number, amount FROM promises "
                            "ORDER BY id").all()
        self.db.session.rollback()
        payers = [r for r in self.record.loans.values()
                  if r["status"] == "OPEN" and r["currency"] == "VND"
                  and Decimal(r["outstanding"]) >= 20_000_000]
        assert payers, "no loan to pay"
        room = {r["account_number"]: Decimal(r["outstanding"]) / 2 for r in payers}
        start = self.morning - timedelta(hours=9, minutes=45)  # 00:15 bank time

        def at() -> str:
            moment = start + timedelta(seconds=rng.randrange(0, 9 * 3600))
            return moment.astimezone(_bank_zone()).isoformat(timespec="seconds")

        items = []
        for cif, account, amount in promised:
            if len(items) >= sizes.payments // 3 or account not in room:
                continue
            share = rng.choice((Decimal(1), Decimal("0.5"), Decimal(0)))
            pay = (amount * share).quantize(Decimal(1000))
            if pay > 0 and pay <= room[account]:
                room[account] -= pay
                items.append({"loan_account_number": account, "cif": cif, "amount": str(pay),
                              "paid_at": at()})
        while len(items) < sizes.payments:
            loan = rng.choice(payers)
            pay = Decimal(rng.randrange(100, 3000) * 1000)
            failed = len(items) % 40 == 7
            if not failed and pay > room[loan["account_number"]]:
                continue
            if not failed:
                room[loan["account_number"]] -= pay
            item = {"loan_account_number": loan["account_number"], "cif": loan["cif"],
                    "amount": str(pay), "paid_at": at()}
            if failed:
                item.update(type="payment.failed", reason="insufficient funds")
            items.append(item)
        poisoned = next(i for i in items if i.get("type") == "payment.failed")
        poisoned["reason"] = POISON_REASON
        return items

    def send_payments(self, items: list[dict]) -> list[dict]:
        created = []
        for start in range(0, len(items), 500):
            response = requests.post(self.systems.url("PAYMENTS") + "/_sandbox/transactions",
                                     json={"transactions": items[start:start + 500]},
                                     timeout=60)
            assert response.status_code == 201, response.text
            created += response.json()["transactions"]
        return created

    def payments(self) -> None:
        """2,000 (CI) payments sent as signed webhooks to the live portal, with duplicates, a
        shuffled order, a few dropped (reconciliation finds them), then reversals."""
        system = self.systems.payments
        system.knobs.update({"duplicate_rate": self.sizes.duplicate_rate, "reorder_ms": 1500,
                             "drop_rate": 0.01, "max_attempts": 10})
        created = self.send_payments(self.payment_items())
        self.record.poison_reference = next(
            t["reference_number"] for t in created if t.get("reason") == POISON_REASON)
        received = [t for t in created if t["type"] == "payment.received"]
        reversed_ = self.rng.sample(received, self.sizes.reversals)
        self.send_payments([{"type": "payment.reversed", "original_reference":
                             t["reference_number"], "reason": "chargeback",
                             "paid_at": (datetime.fromisoformat(t["paid_at"])
                                         + timedelta(minutes=5)).isoformat()}
                            for t in reversed_])
        self.handle_payments()
        with system.lock:
            self.record.webhooks = {k: v for k, v in system.stats.items()}

    def handle_payments(self) -> None:
        """The workers apply what the webhooks store while they arrive, then what is left (a
        fault test kills a worker meanwhile instead)."""
        system = self.systems.payments
        deadline = time.monotonic() + 600
        while not system.wait_idle(0.5):
            try:
                drain(self.app, queues=("events",), timeout=600)
            except RedisConnectionError:  # Redis away: the worker process waits for it
                time.sleep(0.2)
            assert time.monotonic() < deadline, "the payment system did not finish"
        self.work()

    def wait_for_payment_system(self, timeout: float = 600) -> None:
        assert self.systems.payments.wait_idle(timeout), "the payment system did not finish"

    # -- field work ------------------------------------------------------------------------------
    def field_day(self) -> None:
        """Field agents' phones post their positions (JSON batches, OsmAnd for the third), and
        each agent checks in at the customers they visit, one after the other through the day
        (the clock moves on between two check-ins: nobody is at two doors at once)."""
        from integrations.sandbox.phone_sim import PhoneSimulator, Walker
        from portal.field import visits
        from portal.permissions import tokens as api_tokens

        walkers, plans = [], []
        for n, agent in enumerate(self.field_agents):
            homes = self.sql(
                "SELECT DISTINCT ON (a.cif) a.cif, a.lat, a.lon FROM addresses a "
                "JOIN cases c ON c.cif = a.cif WHERE c.assigned_field_agent_id = :a "
                "AND a.lat IS NOT NULL ORDER BY a.cif, a.is_primary DESC", a=agent.id).all()
            _, token = api_tokens.create_token(
                self.db.session, name=f"phone {agent.username}",
                scopes=["api.locations", "api.visits"], user=agent, created_by="scenario")
            path = [(float(h.lat), float(h.lon)) for h in homes]
            walkers.append(Walker(agent.username, token, path or [(10.7769, 106.7009)],
                                  protocol="osmand" if n % 3 == 2 else "json",
                                  device_id=f"scenario-{n}"))
            for k, home in enumerate(homes):
                visit = visits.plan_visit(self.db.session, cif=home.cif, agent_id=agent.id,
                                          planned_for=self.today, planned_by=agent)
                plans.append((k, token, visit.id, float(home.lat), float(home.lon)))
        self.db.session.commit()
        sim = PhoneSimulator(self.systems.portal_url, walkers)
        ticks = self.sizes.gps_ticks
        for k in range(ticks):
            statuses = sim.step(20, at=self.morning - timedelta(seconds=20 * (ticks - k)))
            assert all(s == 200 for s in statuses), (statuses, sim.errors)
        self.record.positions_posted = sum(w.sent for w in walkers)
        gap = min(20, 600 // max(1, self.sizes.visits_per_field_agent))  # minutes, by 20:00
        for k, token, visit_id, lat, lon in sorted(plans, key=lambda p: p[0]):
            self.freeze(self.morning + timedelta(minutes=gap * (k + 1)))
            response = requests.post(
                f"{self.systems.portal_url}/api/v1/field/visits/{visit_id}/checkin",
                json={"lat": lat, "lon": lon, "accuracy_m": 15},
                headers={"Authorization": f"Bearer {token}"}, timeout=20)
            assert response.status_code == 200, response.text
            self.record.checkins.append(response.json())
        self.forward_positions()

    def forward_positions(self) -> None:
        from portal.queues import enqueue

        enqueue("integrations", "workers.jobs.field.forward_locations", trigger="scenario")
        self.work()

    # -- the night -------------------------------------------------------------------------------
    def nightly(self) -> None:
        """The night's jobs as the schedule enqueues them: 00:15 the next bank day the hourly
        priorities refresh (promises dated today are now due), 01:00 the broken-promise job."""
        from portal import clock
        from portal.queues import enqueue
        from portal.schedules import Jobs

        tomorrow = self.today + timedelta(days=1)
        self.freeze(clock.bank_datetime(tomorrow, datetime.min.time().replace(minute=15)))
        enqueue("default", Jobs.RECOMPUTE_PRIORITIES)
        self.work()
        night = self.freeze(clock.bank_datetime(tomorrow, datetime.min.time().replace(hour=1)))
        enqueue("default", Jobs.BROKEN_PROMISES, night.isoformat())
        self.work()

    def reconcile(self) -> None:
        """The day's reconciliation with the payment system's report (ingests what was
        dropped), then the call centre's."""
        from portal.queues import enqueue

        enqueue("integrations", "workers.jobs.payments.run_payments_reconciliation",
                business_date=self.today.isoformat(), trigger="schedule")
        enqueue("integrations", "workers.jobs.calls.reconcile_calls", self.today.isoformat())
        self.work()


def _bank_zone():
    from portal import clock

    return clock.bank_zone()
