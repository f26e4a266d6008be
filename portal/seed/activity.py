"""What the collection team did over the last 30 days: one case per delinquent customer with its
assignment history, actions (calls with their call records, visits, messages, letters), promises
to pay and the payments that kept them (allocated FIFO, so allocations add up to paid_amount)."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta

from portal.models.enums import bucket_for_dpd
from portal.seed.context import SeedContext, Staff
from portal.seed.geo import HANOI, distance_m, offset
from portal.seed.portfolio import CustomerInfo, Product

# How often each result follows an attempt of a (type, subtype).
RESULT_WEIGHTS: dict[tuple[str, str], dict[str, float]] = {
    ("CALL", "OUTBOUND"): {"PTP": 18, "RPC_REFUSED": 7, "RPC_HARDSHIP": 5, "RPC_DISPUTE": 1.5,
                           "RPC_CLAIMS_PAID": 2.5, "CALLBACK": 5, "THIRD_PARTY": 7,
                           "NO_ANSWER": 28, "BUSY": 7, "VOICEMAIL": 4, "SWITCHED_OFF": 6,
                           "WRONG_NUMBER": 3},
    ("CALL", "INBOUND"): {"PTP": 50, "RPC_QUERY": 35, "RPC_CLAIMS_PAID": 15},
    ("CALL", "REFERENCE"): {"MESSAGE_LEFT": 40, "NEW_CONTACT": 15, "REFUSED": 15,
                            "NO_ANSWER": 30},
    ("VISIT", "HOME"): {"PTP": 30, "RPC_REFUSED": 15, "NOT_HOME": 30, "THIRD_PARTY": 12,
                        "MOVED": 8, "ADDRESS_NOT_FOUND": 5},
    ("VISIT", "WORK"): {"PTP": 35, "RPC_REFUSED": 20, "NOT_PRESENT": 35, "LEFT_COMPANY": 10},
    ("SMS", "REMINDER"): {"SENT": 95, "FAILED": 5},
    ("SMS", "OVERDUE_NOTICE"): {"SENT": 1},
    ("EMAIL", "REMINDER"): {"SENT": 90, "BOUNCED": 10},
    ("EMAIL", "DEMAND"): {"SENT": 1},
    ("LETTER", "DEMAND"): {"SENT": 90, "RETURNED": 10},
    ("LETTER", "LEGAL_NOTICE"): {"SENT": 1},
}
# Actions in the window per case, by the case's bucket: (fewest, most).
ACTIONS_PER_CASE = {"1-30": (0, 4), "31-60": (1, 6), "61-90": (2, 7), "90+": (1, 7)}
# Talk time in seconds of answered calls; results not listed were not answered.
TALK_SECONDS = {"PTP": (120, 420), "RPC_REFUSED": (60, 300), "RPC_HARDSHIP": (120, 480),
                "RPC_DISPUTE": (120, 600), "RPC_CLAIMS_PAID": (60, 240), "RPC_QUERY": (60, 300),
                "CALLBACK": (20, 60), "THIRD_PARTY": (30, 120), "WRONG_NUMBER": (10, 40),
                "MESSAGE_LEFT": (40, 150), "NEW_CONTACT": (60, 180), "REFUSED": (20, 90)}
NOTES = {
    "PTP": "KH hứa thanh toán {amount} ngày {date}.",
    "RPC_REFUSED": "KH từ chối thanh toán, nói thu nhập giảm.",
    "RPC_HARDSHIP": "KH mất việc, xin giãn nợ; đề nghị tư vấn cơ cấu lại.",
    "RPC_DISPUTE": "KH khiếu nại phí phạt trả chậm, chuyển bộ phận CSKH.",
    "RPC_CLAIMS_PAID": "KH báo đã chuyển khoản, cần đối soát.",
    "CALLBACK": "KH đang bận, hẹn gọi lại.",
    "THIRD_PARTY": "Người nhà nghe máy, nhắn KH gọi lại.",
    "WRONG_NUMBER": "Thuê bao không phải của KH.",
    "NOT_HOME": "KH không có nhà, để lại giấy hẹn.",
    "MOVED": "KH đã chuyển đi, hàng xóm không biết địa chỉ mới.",
    "NEW_CONTACT": "Người tham chiếu cung cấp số điện thoại mới của KH.",
}
CASE_NOTES = ("KH làm tự do, thu nhập không ổn định.", "KH ưu tiên liên hệ buổi tối.",
              "Đã gửi thông báo nợ quá hạn qua bưu điện.", "KH đang chờ thanh lý tài sản.",
              "Vợ/chồng KH hỗ trợ trả nợ.", "KH làm việc tại khu công nghiệp, đi ca.")
PAYMENT_CHANNELS = ("MOBILE_BANKING", "MOBILE_BANKING", "INTERNET_BANKING", "BRANCH", "ATM",
                    "NAPAS_TRANSFER")
BUCKET_PRIORITY = {"1-30": 20, "31-60": 40, "61-90": 60, "90+": 75}

CASE_COLS = ("id", "cif", "assigned_agent_id", "assigned_field_agent_id", "status",
             "processing_state", "priority", "max_dpd", "total_overdue", "total_outstanding",
             "next_action_at", "last_contact_at", "last_action_at", "notes", "created_at")
ASSIGNMENT_COLS = ("id", "case_id", "role", "agent_id", "previous_agent_id", "assigned_by_id",
                   "assigned_at", "unassigned_at", "reason")
VISIT_COLS = ("id", "cif", "agent_id", "address_id", "planned_for", "planned_by_id", "status",
              "checked_in_at", "checkin_lat", "checkin_lon", "checkin_accuracy_m", "distance_m",
              "verification", "verification_source", "reviewer_id", "reviewed_at",
              "review_note", "notes", "created_at")
ACTION_COLS = ("id", "cif", "account_number", "agent_id", "action_code_id", "type", "subtype",
               "result", "at", "notes", "follow_up_date", "call_id", "visit_id", "lat", "lon",
               "source", "created_at")
CALL_COLS = ("id", "call_id", "agent_id", "cif", "phone", "direction", "started_at",
             "answered_at", "ended_at", "duration_s", "disposition", "recording_ref",
             "action_id", "source")
PROMISE_COLS = ("id", "cif", "account_number", "agent_id", "action_id", "amount", "currency",
                "promised_date", "status", "paid_amount", "resolved_at", "notes", "created_at",
                "updated_at")
PAYMENT_COLS = ("id", "reference_number", "event_id", "account_number", "cif", "amount",
                "currency", "paid_at", "channel", "status", "source", "raw_payload",
                "created_at")
ALLOCATION_COLS = ("id", "promise_id", "payment_id", "amount", "allocated_at")
# a case's note is its customer's master note: its text is the note's one version
NOTE_VERSION_COLS = ("cif", "text", "edited_at")

COLUMNS = {
    "cases": CASE_COLS, "case_assignments": ASSIGNMENT_COLS, "visits": VISIT_COLS,
    "actions": ACTION_COLS, "call_records": CALL_COLS, "promises": PROMISE_COLS,
    "payments": PAYMENT_COLS, "promise_allocations": ALLOCATION_COLS,
    "master_note_versions": NOTE_VERSION_COLS,
}
TABLE_ORDER = tuple(COLUMNS)  # foreign keys point backwards in this order


def vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " VND"


def _round_up(value: int, unit: int) -> int:
    return max(unit, -(-value // unit) * unit)


class _Choices:
    """Weighted results of one (type, subtype), with and without promise results."""

    def __init__(self, weights: dict[str, float], promise_results: set[str]):
        self.all = (tuple(weights), tuple(weights.values()))
        kept = {r: w for r, w in weights.items() if r not in promise_results}
        self.no_promise = (tuple(kept), tuple(kept.values()))

    def pick(self, rng: random.Random, allow_promise: bool) -> str:
        results, weights = self.all if allow_promise else self.no_promise
        return rng.choices(results, weights)[0]


class ActivityGenerator:
    def __init__(self, ctx: SeedContext):
        self.ctx = ctx
        self.rng = ctx.rng
        self.window_start = ctx.today - timedelta(days=30)
        self._round_robin = [0] * len(ctx.teams)
        self.sample_cif: dict[int, str] = {}  # agent id -> a cif of one of their cases
        self._choices = {}
        for key, weights in RESULT_WEIGHTS.items():
            promise = {r for r in weights if ctx.action_codes[(*key, r)][2]}
            self._choices[key] = _Choices(weights, promise)

    # -- helpers -------------------------------------------------------------------------------
    def _next_agent(self, team_index: int) -> Staff:
        agents = self.ctx.teams[team_index].agents
        agent = agents[self._round_robin[team_index] % len(agents)]
        self._round_robin[team_index] += 1
        return agent

    def _clamp(self, ts: datetime) -> datetime:
        """Never in the future."""
        return min(ts, self.ctx.now - timedelta(seconds=60))

    def _random_time(self, day: date, first_hour: int = 8, last_hour: int = 20) -> datetime:
        second = self.rng.randint(first_hour * 3600, last_hour * 3600 - 1)
        return self.ctx.at(day, second // 3600, second // 60 % 60, second % 60)

    def _timeline(self, start: date, k: int) -> list[datetime]:
        """``k`` working-hour times from ``start`` to now, Sundays skipped, sorted."""
        ctx, rng = self.ctx, self.rng
        span = (ctx.today - start).days
        times = []
        for _ in range(k):
            day = start + timedelta(days=rng.randint(0, span))
            if day.weekday() == 6:
                day -= timedelta(days=1)
            if day < start:
                continue
            ts = self._random_time(day)
            if ts < ctx.now:
                times.append(ts)
        times.sort()
        return times

    # -- one customer ------------------------------------------------------------------------
    def generate(self, customers: list[CustomerInfo]) -> dict[str, list[tuple]]:
        rows: dict[str, list[tuple]] = {table: [] for table in TABLE_ORDER}
        for info in customers:
            if any(p.delinquent for p in info.products):
                self._case(rows, info)
        return rows

    def _case(self, rows: dict[str, list[tuple]], info: CustomerInfo) -> None:
        ctx, rng, bulk = self.ctx, self.rng, self.ctx.bulk
        today = ctx.today
        delinquent = [p for p in info.products if p.delinquent]
        max_dpd = max(p.dpd for p in delinquent)
        bucket = bucket_for_dpd(max_dpd)
        focus = max(delinquent, key=lambda p: (p.dpd, p.overdue))
        loans = [p for p in delinquent if p.is_loan]
        promise_product = max(loans, key=lambda p: (p.dpd, p.overdue)) if loans else None
        case_id = bulk.next_id("cases")

        # Assignment: Hanoi → team 3; HCMC → early team up to 60 dpd, late team after.
        created = self._clamp(ctx.at(today - timedelta(days=max_dpd - 1), 3, 0))
        late_hcmc = info.city is not HANOI and max_dpd > 60
        team_index = 2 if info.city is HANOI else (1 if late_hcmc else 0)
        team = ctx.teams[team_index]
        agent = self._next_agent(team_index)
        self.sample_cif.setdefault(agent.id, info.cif)
        assigned_by = team.supervisor.id if team.supervisor else None
        assigned_at = created
        if late_hcmc:  # rolled from the early team when it passed 60 days
            early = self._next_agent(0)
            assigned_at = self._clamp(ctx.at(today - timedelta(days=max_dpd - 61), 7, 30))
            rows["case_assignments"].append((
                bulk.next_id("case_assignments"), case_id, "agent", early.id, None,
                ctx.teams[0].supervisor.id, created, assigned_at, "initial allocation"))
            rows["case_assignments"].append((
                bulk.next_id("case_assignments"), case_id, "agent", agent.id, early.id,
                assigned_by, assigned_at, None, "bucket roll 61+"))
        elif max_dpd > 40 and rng.random() < 0.12:
            previous = self._next_agent(team_index)
            if previous.id != agent.id:
                switch = self._clamp(ctx.at(today - timedelta(days=rng.randint(31, max_dpd - 5)),
                                            8, 0))
                switch = max(switch, created + timedelta(hours=1))
                rows["case_assignments"].append((
                    bulk.next_id("case_assignments"), case_id, "agent", previous.id, None,
                    assigned_by, created, switch, "initial allocation"))
                assigned_at = switch
                rows["case_assignments"].append((
                    bulk.next_id("case_assignments"), case_id, "agent", agent.id, previous.id,
                    assigned_by, switch, None, "workload rebalancing"))
            else:
                rows["case_assignments"].append((
                    bulk.next_id("case_assignments"), case_id, "agent", agent.id, None,
                    assigned_by, created, None, "initial allocation"))
        else:
            rows["case_assignments"].append((
                bulk.next_id("case_assignments"), case_id, "agent", agent.id, None, assigned_by,
                created, None, "initial allocation"))

        field_agent, field_since = None, None
        if max_dpd >= 31 and rng.random() < (0.55 if max_dpd > 60 else 0.25):
            field_agent = ctx.field_by_district[info.district]
            field_since = self._clamp(ctx.at(
                today - timedelta(days=max_dpd - 31 - rng.randint(0, min(5, max_dpd - 31))),
                9, 0))
            rows["case_assignments"].append((
                bulk.next_id("case_assignments"), case_id, "field_agent", field_agent.id, None,
                ctx.teams[field_agent.team].supervisor.id, field_since, None,
                "field escalation"))

        # History within the window, by whoever holds the case now.
        start = max(self.window_start, ctx.local_date(assigned_at))
        low, high = ACTIONS_PER_CASE[bucket]
        times = self._timeline(start, rng.randint(low, high))
        state = _CaseState()
        for at in times:
            self._action(rows, info, at, agent, field_agent, field_since, focus,
                         promise_product, max_dpd, state)
        if not state.promises and promise_product and rng.random() < 0.08:
            self._payment(rows, info, promise_product,
                          self._clamp(self._random_time(
                              today - timedelta(days=rng.randint(0, 29)), 7, 22)),
                          _round_up(promise_product.min_pay * rng.randint(50, 150) // 100,
                                    10_000))
        if field_agent and rng.random() < 0.25:
            self._planned_visit(rows, info, field_agent)

        # The case as it stands now.
        status, processing = "open", "new"
        if state.pending:
            status, processing = "promised", "monitoring"
        elif max_dpd > 180 and rng.random() < 0.25:
            status, processing = "legal", "escalated"
        elif state.wrong_numbers and not state.last_contact:
            status, processing = "skip_trace", "contacting"
        elif state.last_contact:
            status, processing = "in_progress", "negotiating"
        elif state.last_action:
            status, processing = "in_progress", "contacting"
        if state.pending:
            next_action = ctx.at(state.pending + timedelta(days=1), 9, 0)
        elif state.follow_up:
            next_action = ctx.at(state.follow_up, 9, 0)
        elif state.last_action:
            next_action = ctx.at(ctx.local_date(state.last_action) + timedelta(days=3), 9, 0)
        else:
            next_action = ctx.at(today, 8, 0)
        total_overdue = sum(p.overdue for p in delinquent)
        priority = min(100, BUCKET_PRIORITY[bucket] + min(15, total_overdue // 10_000_000)
                       + (10 if state.broken else 0))
        note = rng.choice(CASE_NOTES) if rng.random() < 0.1 else None
        rows["cases"].append((
            case_id, info.cif, agent.id, field_agent.id if field_agent else None, status,
            processing, priority, max_dpd, total_overdue,
            sum(p.outstanding for p in info.products if p.open), next_action,
            state.last_contact, state.last_action, note, created))
        if note is not None:
            rows["master_note_versions"].append((info.cif, note, created))

    # -- actions -------------------------------------------------------------------------------
    def _action(self, rows, info: CustomerInfo, at: datetime, agent: Staff,
                field_agent: Staff | None, field_since: datetime | None, focus: Product,
                promise_product: Product | None, max_dpd: int, state: _CaseState) -> None:
        rng = self.rng
        kind = rng.choices(("CALL", "SMS", "VISIT", "EMAIL", "LETTER"), (70, 14, 12, 2, 2))[0]
        if kind == "VISIT" and not (field_agent and field_since and at > field_since):
            kind = "CALL"
        if kind == "EMAIL" and not info.has_email:
            kind = "SMS"
        if kind == "LETTER" and max_dpd <= 60:
            kind = "SMS"
        if kind == "CALL":
            subtype = rng.choices(("OUTBOUND", "INBOUND", "REFERENCE"),
                                  (88, 5, 7 if info.reference_phones else 0))[0]
        elif kind == "VISIT":
            subtype = "WORK" if info.is_org or rng.random() < 0.2 else "HOME"
        elif kind == "SMS":
            subtype = rng.choice(("REMINDER", "OVERDUE_NOTICE"))
        elif kind == "EMAIL":
            subtype = rng.choices(("REMINDER", "DEMAND"), (70, 30))[0]
        else:
            subtype = "LEGAL_NOTICE" if max_dpd > 90 and rng.random() < 0.3 else "DEMAND"
        result = self._choices[(kind, subtype)].pick(rng, allow_promise=state.pending is None)
        actor = field_agent if kind == "VISIT" else agent
        source = {"CALL": "cti", "VISIT": "manual", "SMS": "manual", "EMAIL": "manual",
                  "LETTER": "system"}[kind]
        if kind == "SMS" and subtype == "OVERDUE_NOTICE":
            source = "system"
        self._record(rows, info, at, actor if source != "system" else None, kind, subtype,
                     result, focus, promise_product, state)

    def _record(self, rows, info: CustomerInfo, at: datetime, actor: Staff | None, kind: str,
                subtype: str, result: str, focus: Product, promise_product: Product | None,
                state: _CaseState) -> int:
        ctx, rng, bulk = self.ctx, self.rng, self.ctx.bulk
        code_id, is_contact, is_promise, follow_days = ctx.action_codes[(kind, subtype, result)]
        action_id = bulk.next_id("actions")
        local_day = ctx.local_date(at)
        follow_up = None if follow_days is None else local_day + timedelta(days=follow_days)
        source = "system" if actor is None else ("cti" if kind == "CALL" else "manual")
        notes = NOTES.get(result)
        call_id = visit_id = lat = lon = None
        if kind == "CALL":
            call_id = self._call(rows, info, at, actor, subtype, result, action_id)
        elif kind == "VISIT":
            visit_id, lat, lon = self._visit(rows, info, at, actor, subtype, result)
        account = focus.number
        if is_promise:
            product = promise_product or focus
            account = product.number
            amount, promised = self._promise(rows, info, at, actor, action_id, product,
                                             promise_product is not None, state)
            notes = notes.format(amount=vnd(amount), date=promised.strftime("%d/%m/%Y"))
        rows["actions"].append((
            action_id, info.cif, account, actor.id if actor else None, code_id, kind, subtype,
            result, at, notes, follow_up, call_id, visit_id, lat, lon, source,
            at + timedelta(seconds=rng.randint(1, 20))))
        state.last_action = at
        if is_contact:
            state.last_contact = at
        if result == "WRONG_NUMBER":
            state.wrong_numbers += 1
        if follow_up is not None:
            state.follow_up = follow_up
        if is_promise:  # the system confirms the promise by SMS a moment later
            confirm_at = at + timedelta(minutes=2)
            if confirm_at < ctx.now:
                self._record(rows, info, confirm_at, None, "SMS", "PTP_CONFIRMATION", "SENT",
                             focus, promise_product, state)
        return action_id

    def _call(self, rows, info: CustomerInfo, at: datetime, agent: Staff, subtype: str,
              result: str, action_id: int) -> str:
        ctx, rng = self.ctx, self.rng
        call_id = f"CTI-{ctx.local_date(at):%Y%m%d}-{ctx.seq('call'):08d}"
        talk = TALK_SECONDS.get(result)
        ring = rng.randint(5, 30)
        duration = rng.randint(*talk) if talk else 0
        ended = at - timedelta(seconds=rng.randint(20, 90))
        started = ended - timedelta(seconds=ring + duration)
        answered = started + timedelta(seconds=ring) if talk else None
        phone = (rng.choice(info.reference_phones) if subtype == "REFERENCE"
                 else info.mobile_e164)
        recording = f"recordings/{ctx.local_date(at):%Y/%m/%d}/{call_id}.mp3" if talk else None
        rows["call_records"].append((
            ctx.bulk.next_id("call_records"), call_id, agent.id, info.cif, phone,
            "inbound" if subtype == "INBOUND" else "outbound", started, answered, ended,
            duration, result, recording, action_id, "cti"))
        return call_id

    def _visit(self, rows, info: CustomerInfo, at: datetime, agent: Staff, subtype: str,
               result: str) -> tuple[int, float, float]:
        ctx, rng = self.ctx, self.rng
        target = info.addresses[0]
        if subtype == "WORK":
            target = next((a for a in info.addresses if a.type == "WORK"), target)
        checked_in = at - timedelta(minutes=rng.randint(5, 40))
        roll = rng.random()
        reviewer = reviewed_at = review_note = None
        supervisor = ctx.teams[agent.team].supervisor
        if roll < 0.80:
            metres, verification, source = rng.uniform(5, 150), "verified", "gps"
        elif roll < 0.92:
            metres, source = rng.uniform(250, 900), "manual"
            if ctx.local_date(at) >= ctx.today - timedelta(days=2):
                verification = "manual_pending"
            else:
                verification = "manual_approved"
                reviewer = supervisor.id
                reviewed_at = self._clamp(at + timedelta(hours=rng.randint(2, 30)))
                review_note = "Đã xác minh qua ảnh chụp tại nhà KH."
        elif roll < 0.96:
            metres, verification, source = rng.uniform(150, 400), "unverified", "gps"
        else:
            metres, verification, source = rng.uniform(2000, 5000), "rejected", "manual"
            reviewer = supervisor.id
            reviewed_at = self._clamp(at + timedelta(hours=rng.randint(2, 30)))
            review_note = "Vị trí check-in cách xa địa chỉ KH."
        lat, lon = offset(target.lat, target.lon, metres, rng.uniform(0, 6.283))
        lat, lon = round(lat, 6), round(lon, 6)
        distance = round(distance_m(lat, lon, target.lat, target.lon), 1)
        visit_id = ctx.bulk.next_id("visits")
        planned_for = ctx.local_date(at)
        rows["visits"].append((
            visit_id, info.cif, agent.id, target.id, planned_for,
            supervisor.id if rng.random() < 0.5 else agent.id, "completed", checked_in, lat, lon,
            round(rng.uniform(4, 25), 1), distance, verification, source, reviewer, reviewed_at,
            review_note, None, ctx.at(planned_for - timedelta(days=1), 17, 0)))
        return visit_id, lat, lon

    def _planned_visit(self, rows, info: CustomerInfo, agent: Staff) -> None:
        ctx, rng = self.ctx, self.rng
        day = ctx.today + timedelta(days=rng.randint(0, 2))
        rows["visits"].append((
            ctx.bulk.next_id("visits"), info.cif, agent.id, info.addresses[0].id, day,
            ctx.teams[agent.team].supervisor.id, "planned", None, None, None, None, None, None,
            None, None, None, None, "Ưu tiên gặp trực tiếp KH.",
            self._clamp(ctx.at(ctx.today - timedelta(days=1), 17, 0))))

    # -- promises and payments -----------------------------------------------------------------
    def _promise(self, rows, info: CustomerInfo, at: datetime, agent: Staff | None,
                 action_id: int, product: Product, payable: bool,
                 state: _CaseState) -> tuple[int, date]:
        ctx, rng, bulk = self.ctx, self.rng, self.ctx.bulk
        base = rng.choices((product.min_pay, product.overdue or product.min_pay,
                            product.min_pay // 2), (60, 25, 15))[0]
        amount = _round_up(base, 100_000)
        promised = ctx.local_date(at) + timedelta(days=rng.choices(range(8), (10, 20, 20, 15,
                                                                               10, 10, 5, 10))[0])
        promise_id = bulk.next_id("promises")
        state.promises += 1
        due_end = ctx.at(promised, 21, 0)
        first_pay = at + timedelta(hours=1)
        payments: list[tuple[datetime, int, int]] = []  # (paid_at, amount, allocated)
        resolved_at = None
        if promised >= ctx.today:
            status = "pending"
            state.pending = promised
            if payable and rng.random() < 0.15 and first_pay < ctx.now:
                part = _round_up(amount * rng.randint(20, 60) // 100, 10_000)
                if part < amount:
                    payments.append((self._between(first_pay, ctx.now), part, part))
                    status = "partially_kept"  # open, part paid (as allocating a payment says)
        else:
            roll = rng.random() if payable else 1.0
            close_of_day = self._clamp(ctx.at(promised + timedelta(days=1), 0, 30))
            if roll < 0.5:
                status = "kept"
                if rng.random() < 0.2 and amount >= 200_000:
                    first = _round_up(amount * rng.randint(30, 70) // 100, 10_000)
                    if first >= amount:
                        first = amount - 10_000
                    t1 = self._between(first_pay, due_end)
                    t2 = self._between(t1 + timedelta(minutes=5), due_end)
                    payments += [(t1, first, first), (t2, amount - first, amount - first)]
                else:
                    paid = amount + (_round_up(amount * rng.randint(1, 20) // 100, 10_000)
                                     if rng.random() < 0.1 else 0)
                    payments.append((self._between(first_pay, due_end), paid, amount))
                resolved_at = payments[-1][0] + timedelta(seconds=rng.randint(5, 90))
            elif roll < 0.7:
                # paid short by its date: the product's nightly rule breaks it (partially kept
                # is a promise still open with part paid)
                status = "broken"
                state.broken = True
                part = _round_up(amount * rng.randint(30, 80) // 100, 10_000)
                if part >= amount:
                    part = amount - 10_000
                payments.append((self._between(first_pay, due_end), part, part))
                resolved_at = close_of_day
            else:
                status = "broken"
                resolved_at = close_of_day
                state.broken = True
        paid_amount = sum(allocated for _, _, allocated in payments)
        rows["promises"].append((
            promise_id, info.cif, product.number if product.is_loan else None,
            agent.id if agent else None, action_id, amount, "VND", promised, status, paid_amount,
            resolved_at, None, at, resolved_at or at))
        for paid_at, paid, allocated in payments:
            payment_id = self._payment(rows, info, product, paid_at, paid)
            rows["promise_allocations"].append((
                bulk.next_id("promise_allocations"), promise_id, payment_id, allocated,
                paid_at + timedelta(seconds=3)))
        return amount, promised

    def _between(self, start: datetime, end: datetime) -> datetime:
        end = min(end, self.ctx.now - timedelta(seconds=60))
        if end <= start:
            return min(start, self.ctx.now - timedelta(seconds=60))
        return start + timedelta(seconds=self.rng.randint(0, int((end - start).total_seconds())))

    def _payment(self, rows, info: CustomerInfo, product: Product, paid_at: datetime,
                 amount: int) -> int:
        ctx, rng = self.ctx, self.rng
        n = ctx.seq("payment")
        local = paid_at.astimezone(ctx.tz)
        reference = f"FT{local:%y}{local.timetuple().tm_yday:03d}{n:08d}"
        event_id = f"evt_{n:012d}"
        channel = rng.choice(PAYMENT_CHANNELS)
        payment_id = ctx.bulk.next_id("payments")
        raw = json.dumps({"event_id": event_id, "reference": reference,
                          "account_number": product.number, "amount": str(amount),
                          "currency": "VND", "paid_at": paid_at.isoformat(),
                          "channel": channel})
        rows["payments"].append((
            payment_id, reference, event_id, product.number, info.cif, amount, "VND", paid_at,
            channel, "received", "webhook", raw, paid_at + timedelta(seconds=2)))
        return payment_id


class _CaseState:
    __slots__ = ("pending", "broken", "promises", "last_action", "last_contact", "follow_up",
                 "wrong_numbers")

    def __init__(self) -> None:
        self.pending: date | None = None
        self.broken = False
        self.promises = 0
        self.last_action: datetime | None = None
        self.last_contact: datetime | None = None
        self.follow_up: date | None = None
        self.wrong_numbers = 0
