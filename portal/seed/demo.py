"""The demo data set: staff and teams, action codes, integration settings, a portfolio of
customers with loans and cards, and 30 days of collection work on it.

Everything is written on one psycopg connection inside one transaction, with COPY, so a seed is
all or nothing. A marker row in the audit log makes a second run a no-op. The random source has a
fixed seed: the same database, on the same business date, gets the same data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from psycopg import Connection
from psycopg.types.json import Jsonb

from portal import clock
from portal.models import Base
from portal.models.enums import INTEGRATIONS
from portal.seed import activity
from portal.seed.action_codes import DEFAULT_ACTION_CODES
from portal.seed.bulk import BulkWriter
from portal.seed.context import RANDOM_SEED, FastRandom, SeedContext, Staff, TeamInfo
from portal.seed.geo import HANOI, HCMC
from portal.seed.message_templates import ensure_message_templates
from portal.seed.portfolio import COLUMNS as PORTFOLIO_COLUMNS
from portal.seed.portfolio import PortfolioGenerator
from portal.seed.strategies import ensure_demo_strategy

SEED_MARKER = "seed.demo"
DEFAULT_DEMO_PASSWORD = "Demo@2026"
CHUNK_SIZE = 20_000  # customers generated and copied at a time (bounded memory at any scale)

TEAMS = (
    ("TP.HCM – Nhắc nợ sớm (1-60)", HCMC),
    ("TP.HCM – Thu hồi nợ (61+)", HCMC),
    ("Hà Nội – Thu hồi nợ", HANOI),
)
# Field agents: team index, area name, districts they cover (together: every district).
FIELD_AREAS = (
    ("field01", 0, "TP.HCM – Trung tâm",
     ("Quận 1", "Quận 3", "Quận 4", "Quận Phú Nhuận", "Quận Bình Thạnh")),
    ("field02", 1, "TP.HCM – Tây Nam",
     ("Quận 5", "Quận 6", "Quận 8", "Quận 10", "Quận 11", "Quận Bình Tân")),
    ("field03", 1, "TP.HCM – Đông Bắc", ("Quận Gò Vấp", "Quận 12", "TP. Thủ Đức")),
    ("field04", 1, "TP.HCM – Tây Bắc & Nam", ("Quận Tân Bình", "Quận Tân Phú", "Quận 7")),
    ("field05", 2, "Hà Nội – Trung tâm & Bắc",
     ("Quận Hoàn Kiếm", "Quận Ba Đình", "Quận Tây Hồ", "Quận Long Biên")),
    ("field06", 2, "Hà Nội – Nam",
     ("Quận Đống Đa", "Quận Hai Bà Trưng", "Quận Hoàng Mai", "Quận Thanh Xuân")),
    ("field07", 2, "Hà Nội – Tây",
     ("Quận Cầu Giấy", "Quận Nam Từ Liêm", "Quận Bắc Từ Liêm", "Quận Hà Đông")),
)
CALL_AGENTS_PER_TEAM = 6
# Cron expressions (bank time) of the scheduled integrations; the others are real time.
INTEGRATION_SCHEDULES = {"T24": "0 2 * * *", "W4": "30 2 * * *", "LOS": "0 3 * * *",
                         "PAYMENTS": "30 23 * * *", "CTI": "45 23 * * *"}

# Tables whose ids the seed assigns.
ID_TABLES = ("teams", "users", "customers", "reference_customers", "phones", "addresses",
             "emails", "loans", "cards", "collaterals", "loan_applications",
             "loan_bucket_history", "cases", "case_assignments", "visits", "actions",
             "call_records", "promises", "payments", "promise_allocations",
             "agent_status_events", "agent_locations")
USER_COLS = ("id", "username", "full_name", "email", "role", "team_id", "password_hash",
             "active", "phone_extension", "cti_agent_id", "region")


def already_seeded(conn: Connection) -> str | None:
    """Why the database counts as seeded already, or None."""
    if conn.execute("SELECT 1 FROM audit_log WHERE action = %s LIMIT 1",
                    (SEED_MARKER,)).fetchone():
        return "demo seed marker found in the audit log"
    if conn.execute("SELECT 1 FROM users WHERE username = 'admin'").fetchone():
        return "the demo admin user exists"
    return None


def ensure_action_codes(conn: Connection) -> dict[tuple[str, str, str], tuple]:
    """Insert the default catalogue where missing; (type, subtype, result) → (id, is_contact,
    is_promise, follow_up_days) of every code in the table."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO action_codes (type, subtype, result, label, is_contact, is_promise, "
            "follow_up_days, active, sort_order) VALUES (%s, %s, %s, %s, %s, %s, %s, true, %s) "
            "ON CONFLICT (type, subtype, result) DO NOTHING",
            [(*code, order * 10) for order, code in enumerate(DEFAULT_ACTION_CODES, start=1)],
        )
    rows = conn.execute("SELECT type, subtype, result, id, is_contact, is_promise, "
                        "follow_up_days FROM action_codes").fetchall()
    return {(t, s, r): (i, c, p, f) for t, s, r, i, c, p, f in rows}


# the legal team and two external agencies a supervisor can place a case with (portal/placements)
DEFAULT_AGENCIES = (
    ("LEGAL", "Phòng Pháp chế - Xử lý nợ", "legal", "phapche@nganhang.vn · 028 3822 0001"),
    ("DAIVIET", "Công ty TNHH Mua bán nợ Đại Việt", "agency", "028 3930 4567"),
    ("SAOVIET", "Công ty CP Thu hồi nợ Sao Việt", "agency", "024 3974 1122"),
)


def ensure_agencies(conn: Connection) -> None:
    """Insert the default agencies where missing."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO agencies (code, name, kind, contact) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (code) DO NOTHING",
                        DEFAULT_AGENCIES)


class DemoSeeder:
    def __init__(self, conn: Connection, *, customers: int, products: int, password_hash: str,
                 tz: ZoneInfo, now: datetime | None = None,
                 echo: Callable[[str], None] = print):
        self.conn = conn
        self.customers = customers
        self.products = products
        self.password_hash = password_hash
        self.echo = echo
        self.ctx = SeedContext(bulk=BulkWriter(conn), tz=tz, now=now or clock.now())

    @property
    def bulk(self) -> BulkWriter:
        return self.ctx.bulk

    def run(self) -> dict[str, int]:
        try:
            return self._run()
        finally:
            self.bulk.close()

    def _run(self) -> dict[str, int]:
        started = time.perf_counter()
        self.bulk.prime(ID_TABLES)
        fast = self.bulk.disable_fk_triggers()
        self._staff()
        self.bulk.flush()
        self.ctx.action_codes = ensure_action_codes(self.conn)
        ensure_agencies(self.conn)
        ensure_message_templates(self.conn)
        first = self.ctx.teams[0]
        ensure_demo_strategy(self.conn, first.supervisor.id, first.id, clock.now())
        self._integration_settings()
        # the portfolio draws from its own stream, as the sandbox twins' copy of it does
        # (integrations/sandbox/t24_files.SeedSource): the staff drawn above must not shift
        # it, or the twins would describe other customers than the ones seeded here
        portfolio = PortfolioGenerator(replace(self.ctx, rng=FastRandom(RANDOM_SEED)),
                                       self.customers, self.products)
        work = activity.ActivityGenerator(self.ctx)
        for start in range(0, self.customers, CHUNK_SIZE):
            end = min(self.customers, start + CHUNK_SIZE)
            chunk = portfolio.generate(start, end)
            for table, columns in PORTFOLIO_COLUMNS.items():
                self.bulk.copy(table, columns, chunk.rows[table])
            rows = work.generate(chunk.customers)
            for table in activity.TABLE_ORDER:
                self.bulk.copy(table, activity.COLUMNS[table], rows[table])
            counts = self.bulk.counts
            self.echo(f"customers {end}/{self.customers} · loans+cards "
                      f"{counts['loans'] + counts['cards']}/{self.products} · cases "
                      f"{counts['cases']} · {time.perf_counter() - started:.1f}s")
        self._agent_status(work.sample_cif)
        self._agent_locations()
        self.bulk.fix_sequences()
        self.echo(f"written · {time.perf_counter() - started:.1f}s")
        if fast:
            self.bulk.verify_foreign_keys(Base.metadata)
            self.echo(f"foreign keys verified · {time.perf_counter() - started:.1f}s")
        self._mark()
        self.bulk.execute("ANALYZE")
        self.echo(f"analyzed · {time.perf_counter() - started:.1f}s")
        return dict(self.bulk.counts)

    # -- staff ---------------------------------------------------------------------------------
    def _staff(self) -> None:
        ctx, rng, pools = self.ctx, self.ctx.rng, self.ctx.pools
        team_ids = self.bulk.ids("teams", len(TEAMS))
        ctx.teams = [TeamInfo(id=i, name=name, city=city)
                     for i, (name, city) in zip(team_ids, TEAMS, strict=True)]
        self.bulk.copy("teams", ("id", "name", "region"),
                       [(t.id, t.name, t.city.region) for t in ctx.teams])
        rows = []

        def add(username: str, role: str, team: int | None = None, extension: str | None = None,
                region: str | None = None, districts: tuple[str, ...] = ()) -> Staff:
            staff = Staff(id=self.bulk.next_id("users"), username=username, role=role,
                          full_name=pools.person_name(rng, rng.random() < 0.5), team=team,
                          city=ctx.teams[team].city if team is not None else None,
                          districts=districts)
            ctx.users[username] = staff
            rows.append((staff.id, username, staff.full_name, f"{username}@demo-bank.vn", role,
                         ctx.teams[team].id if team is not None else None, self.password_hash,
                         True, extension, f"CTI-{extension}" if extension else None,
                         region or (staff.city.region if staff.city else None)))
            return staff

        add("admin", "admin")
        add("ops", "ops")
        for index, team in enumerate(ctx.teams):
            team.supervisor = add(f"sup{index + 1}", "supervisor", index, f"190{index + 1}")
        for n in range(1, len(TEAMS) * CALL_AGENTS_PER_TEAM + 1):
            index = (n - 1) // CALL_AGENTS_PER_TEAM
            ctx.teams[index].agents.append(
                add(f"agent{n:02d}", "agent", index, f"{1000 + n}"))
        for username, index, area, districts in FIELD_AREAS:
            staff = add(username, "field_agent", index, region=area, districts=districts)
            ctx.teams[index].field_agents.append(staff)
            for district in districts:
                ctx.field_by_district[district] = staff
        # an auditor reads the audit log (named here, not drawn: the draws above stay the same)
        rows.append((self.bulk.next_id("users"), "auditor", "Kiểm toán viên Demo",
                     "auditor@demo-bank.vn", "auditor", None, self.password_hash, True, None,
                     None, None))
        self.bulk.copy("users", USER_COLS, rows)
        self.bulk.executemany("UPDATE teams SET supervisor_id = %s WHERE id = %s",
                              [(t.supervisor.id, t.id) for t in ctx.teams])

    def _integration_settings(self) -> None:
        admin = self.ctx.users["admin"].id
        self.bulk.executemany(
            "INSERT INTO integration_settings (integration, enabled, schedule, "
            "changed_by_id, changed_at, change_reason) VALUES (%s, true, %s, %s, %s, %s) "
            "ON CONFLICT (integration) DO NOTHING",
            [(name, INTEGRATION_SCHEDULES.get(name), admin, self.ctx.now, "demo seed")
             for name in INTEGRATIONS],
        )
        self.bulk.counts["integration_settings"] = len(INTEGRATIONS)

    # -- live state of agents ------------------------------------------------------------------
    def _agent_status(self, sample_cif: dict[int, str]) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        status_rows, event_rows = [], []
        shift_start = ctx.at(ctx.today, 8, 0)
        for staff in ctx.users.values():
            if staff.role not in ("agent", "field_agent"):
                continue
            if staff.role == "agent":
                status = rng.choices(("available", "on_call", "wrap_up", "break", "offline"),
                                     (35, 30, 10, 10, 15))[0]
                source = "cti"
            else:
                status, source = rng.choice(("available", "available", "offline")), "portal"
            since = ctx.now - timedelta(minutes=rng.randint(1, 90))
            call_id = cif = None
            if status == "on_call" and staff.id in sample_cif:
                call_id = f"CTI-LIVE-{staff.id:04d}"
                cif = sample_cif[staff.id]
            status_rows.append((staff.id, status, since, source, True, call_id, cif))
            if status != "offline" and shift_start < since:
                event_rows.append((self.bulk.next_id("agent_status_events"), staff.id,
                                   "available", "offline", shift_start, source, "shift start"))
                if status != "available":
                    event_rows.append((self.bulk.next_id("agent_status_events"), staff.id,
                                       status, "available", since, source, None))
        self.bulk.copy("agent_status", ("agent_id", "status", "since", "source", "synced",
                                        "current_call_id", "current_cif"), status_rows)
        self.bulk.copy("agent_status_events", ("id", "agent_id", "status", "previous_status",
                                               "at", "source", "reason"), event_rows)

    def _agent_locations(self) -> None:
        """Today's GPS trail of each field agent (every 5 minutes within their area)."""
        ctx, rng = self.ctx, self.ctx.rng
        day = ctx.today if ctx.now_local.hour >= 9 else ctx.today - timedelta(days=1)
        start, end = ctx.at(day, 8, 0), min(ctx.now, ctx.at(day, 18, 0))
        rows = []
        for staff in ctx.users.values():
            if staff.role != "field_agent":
                continue
            centres = {d.name: d for d in staff.city.districts}
            district = centres[staff.districts[0]]
            lat, lon = district.lat, district.lon
            battery = rng.uniform(85, 100)
            ts = start
            while ts <= end:
                if rng.random() < 0.08:  # heads for another district of the area
                    district = centres[rng.choice(staff.districts)]
                lat += (district.lat - lat) * 0.2 + rng.gauss(0, 0.0007)
                lon += (district.lon - lon) * 0.2 + rng.gauss(0, 0.0007)
                battery = max(5.0, battery - rng.uniform(0.1, 0.6))
                rows.append((self.bulk.next_id("agent_locations"), staff.id, round(lat, 6),
                             round(lon, 6), round(rng.uniform(4, 30), 1),
                             round(rng.uniform(0, 12), 2), round(rng.uniform(0, 359), 1),
                             round(battery, 1), ts, ts + timedelta(seconds=rng.randint(1, 20)),
                             "api", ts + timedelta(seconds=30)))
                ts += timedelta(minutes=5)
        self.bulk.copy("agent_locations", ("id", "agent_id", "lat", "lon", "accuracy_m", "speed",
                                           "heading", "battery", "recorded_at", "received_at",
                                           "source", "forwarded_at"), rows)

    def _mark(self) -> None:
        after = {"customers": self.customers, "products": self.products,
                 "random_seed": RANDOM_SEED, "business_date": self.ctx.today.isoformat(),
                 "counts": dict(self.bulk.counts)}
        self.bulk.execute(
            "INSERT INTO audit_log (at, actor_id, actor_label, action, entity_type, after) "
            "VALUES (%s, %s, 'seed-demo', %s, 'database', %s)",
            (self.ctx.now, self.ctx.users["admin"].id, SEED_MARKER, Jsonb(after)),
        )
