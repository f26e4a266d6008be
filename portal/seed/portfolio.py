"""Bank data of the demo: customers with their contacts and reference persons, loans (T24),
cards (W4), collaterals, loan applications (LOS) and the loans' bucket history.

Amounts are whole dong held as ``int`` (exact; VND has no minor unit) and stored as Numeric.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from portal.models.enums import BUCKETS, RELATIONSHIP_TYPES, bucket_for_dpd
from portal.seed.context import SeedContext
from portal.seed.geo import HANOI, HCMC, City, District
from portal.seed.pools import EMAIL_DOMAINS, ascii_slug, company_domain

MOBILE_PREFIXES = ("032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097",
                   "098", "070", "076", "077", "078", "079", "089", "090", "093", "081", "082",
                   "083", "084", "085", "088", "091", "094", "056")
_MOBILE_SPACE = len(MOBILE_PREFIXES) * 10**7

# Share of products per bucket (a collection portfolio: most are current).
BUCKET_WEIGHTS = {"current": 0.50, "1-30": 0.20, "31-60": 0.11, "61-90": 0.08, "90+": 0.11}
BUCKET_BOUNDS = {name: (low, high) for name, low, high in BUCKETS}

# product: (min amount, max amount, min term, max term, min rate bp, max rate bp)
LOAN_PRODUCTS = {
    "CONSUMER_LOAN": (10_000_000, 80_000_000, 6, 36, 1800, 3600),
    "PERSONAL_LOAN": (50_000_000, 500_000_000, 12, 60, 1000, 1600),
    "AUTO_LOAN": (300_000_000, 1_500_000_000, 36, 84, 800, 1100),
    "MORTGAGE": (800_000_000, 5_000_000_000, 120, 300, 750, 1100),
    "SME_WORKING_CAPITAL": (500_000_000, 5_000_000_000, 6, 12, 800, 1200),
    "SME_TERM_LOAN": (1_000_000_000, 15_000_000_000, 36, 84, 900, 1200),
}
INDIVIDUAL_LOANS = (("PERSONAL_LOAN", 35), ("CONSUMER_LOAN", 30), ("AUTO_LOAN", 15),
                    ("MORTGAGE", 20))
ORGANIZATION_LOANS = (("SME_WORKING_CAPITAL", 55), ("SME_TERM_LOAN", 45))
# card product: (BIN, min limit, max limit)
CARD_PRODUCTS = {
    "VISA_CLASSIC": ("422151", 10_000_000, 50_000_000),
    "VISA_GOLD": ("422152", 30_000_000, 150_000_000),
    "VISA_PLATINUM": ("422153", 100_000_000, 500_000_000),
    "MASTERCARD_STANDARD": ("512345", 10_000_000, 50_000_000),
    "JCB_GOLD": ("356789", 30_000_000, 150_000_000),
}
CARD_SHARE = 0.30  # of an individual's products
VEHICLES = (("Toyota", "Vios", "2NR"), ("Toyota", "Camry", "2AR"), ("Toyota", "Fortuner", "2GD"),
            ("Honda", "City", "L15"), ("Honda", "CR-V", "L15B"), ("Hyundai", "Accent", "G4LC"),
            ("Hyundai", "Tucson", "G4NA"), ("Kia", "Seltos", "G4FG"), ("Kia", "K3", "G4NA"),
            ("Mazda", "CX-5", "PY"), ("Mazda", "Mazda3", "PE"), ("Ford", "Ranger", "P5AT"),
            ("Ford", "Everest", "P5AT"), ("VinFast", "VF 8", "EDU"), ("VinFast", "Lux A2.0", "N20"),
            ("Mitsubishi", "Xpander", "4A91"))
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
APP_CHANNELS = (("BRANCH", 45), ("MOBILE_APP", 25), ("ONLINE", 15), ("DSA", 10), ("PARTNER", 5))
REF_RELATIONSHIPS = (("spouse", 30), ("parent", 15), ("sibling", 15), ("relative", 10),
                     ("colleague", 10), ("friend", 8), ("guarantor", 8), ("co_signer", 4))
_SAME_FAMILY = {"parent", "sibling", "child"}

CUSTOMER_COLS = ("id", "cif", "type", "name", "date_of_birth", "national_id", "gender",
                 "company_name", "registration_number", "tax_id", "segment", "status",
                 "source_system", "last_synced_at")
REFERENCE_COLS = ("id", "ref_cif", "primary_cif", "relationship_type", "type", "name",
                  "date_of_birth", "national_id", "gender", "contacts", "source_system",
                  "last_synced_at")
PHONE_COLS = ("id", "cif", "ref_cif", "type", "number", "number_e164", "is_primary",
              "is_verified", "verified_at", "verified_by_id", "do_not_contact", "source_system",
              "last_synced_at")
ADDRESS_COLS = ("id", "cif", "type", "is_primary", "is_verified", "line1", "ward", "district",
                "city", "province", "country", "postal_code", "lat", "lon", "source_system",
                "last_synced_at")
EMAIL_COLS = ("id", "cif", "type", "address", "is_primary", "is_verified", "source_system",
              "last_synced_at")
LOAN_COLS = ("id", "account_number", "cif", "source_system", "last_synced_at", "product_type",
             "currency", "original_amount", "outstanding", "due_amount", "min_pay",
             "next_payment_date", "dpd", "bucket", "status", "disbursement_date",
             "maturity_date", "close_date", "interest_rate", "term")
CARD_COLS = ("id", "contract_number", "cif", "masked_card_number", "product", "currency",
             "credit_limit", "outstanding", "min_due", "due_date", "days_overdue", "bucket",
             "status", "w4_case_id", "w4_case_status", "source_system", "last_synced_at")
COLLATERAL_COLS = ("id", "collateral_number", "cif", "type", "description", "value", "currency",
                   "valuation_date", "vehicle_make", "vehicle_model", "vehicle_year",
                   "license_plate", "chassis_number", "engine_number", "property_address",
                   "property_area_m2", "land_certificate_number", "source_system",
                   "last_synced_at")
LOAN_COLLATERAL_COLS = ("account_number", "collateral_number", "source_system",
                        "last_synced_at")
APPLICATION_COLS = ("id", "application_id", "cif", "account_number", "product",
                    "requested_amount", "approved_amount", "currency", "application_date",
                    "decision_date", "disbursement_date", "monthly_income", "employer",
                    "channel", "status", "raw", "source_system", "last_synced_at")
BUCKET_HISTORY_COLS = ("id", "account_number", "bucket", "dpd", "from_date", "to_date")


@dataclass(slots=True)
class Product:
    """What the collection side needs to know about a loan or card of a customer."""

    is_loan: bool
    number: str  # account number (loan) or contract number (card)
    product: str
    dpd: int
    status: str
    outstanding: int
    overdue: int  # due_amount of a loan, overdue part of a card's minimum due
    min_pay: int

    @property
    def delinquent(self) -> bool:
        return self.dpd > 0 and self.status != "CLOSED"

    @property
    def open(self) -> bool:
        return self.status != "CLOSED"


@dataclass(slots=True)
class AddressInfo:
    id: int
    type: str
    lat: float
    lon: float


@dataclass(slots=True)
class CustomerInfo:
    cif: str
    is_org: bool
    name: str
    city: City
    district: str
    mobile_e164: str
    addresses: list[AddressInfo]
    has_email: bool
    reference_phones: list[str] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)


class PortfolioChunk:
    """The rows of one slice of customers, ready to be copied table by table."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {
            "customers": [], "reference_customers": [], "phones": [], "addresses": [],
            "emails": [], "loans": [], "cards": [], "collaterals": [], "loan_collaterals": [],
            "loan_applications": [], "loan_bucket_history": [],
        }
        self.customers: list[CustomerInfo] = []


COLUMNS = {
    "customers": CUSTOMER_COLS, "reference_customers": REFERENCE_COLS, "phones": PHONE_COLS,
    "addresses": ADDRESS_COLS, "emails": EMAIL_COLS, "loans": LOAN_COLS, "cards": CARD_COLS,
    "collaterals": COLLATERAL_COLS, "loan_collaterals": LOAN_COLLATERAL_COLS,
    "loan_applications": APPLICATION_COLS, "loan_bucket_history": BUCKET_HISTORY_COLS,
}


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, min(day.day, 28))


def next_instalment(today: date, dpd: int, cycle_days: int = 30) -> date:
    """The next due date of an account ``dpd`` days past due on ``today``, instalments every
    ``cycle_days``: the first one after the oldest unpaid (today - dpd) that is not in the past
    (today itself when the cycle ends today)."""
    cycles = max(1, math.ceil(dpd / cycle_days))
    return today - timedelta(days=dpd) + timedelta(days=cycle_days * cycles)


def _round_to(value: int, unit: int) -> int:
    return max(unit, (value + unit // 2) // unit * unit)


def _rate(bp: int) -> str:
    return f"{bp // 100}.{bp % 100:02d}"


class PortfolioGenerator:
    def __init__(self, ctx: SeedContext, customers: int, products: int):
        self.ctx = ctx
        self.total_customers = customers
        self.total_products = products
        self.sync_at = ctx.last_sync_at
        self._loan_choices = tuple(zip(*INDIVIDUAL_LOANS, strict=True))
        self._org_choices = tuple(zip(*ORGANIZATION_LOANS, strict=True))
        self._bucket_names = tuple(BUCKET_WEIGHTS)
        self._bucket_weights = tuple(BUCKET_WEIGHTS.values())

    # -- numbers and identifiers -------------------------------------------------------------
    def _mobile(self) -> tuple[str, str]:
        k = self.ctx.seq("mobile")
        v = (k * 197_383_411 + 4_242_424) % _MOBILE_SPACE  # a permutation: unique
        number = f"{MOBILE_PREFIXES[v // 10**7]}{v % 10**7:07d}"
        return number, "+84" + number[1:]

    def _landline(self, city: City) -> tuple[str, str]:
        k = self.ctx.seq("landline")
        v = (k * 7_654_321 + 123_457) % 10**7
        number = f"{city.landline_prefix}{self.ctx.rng.choice('3367')}{v:07d}"
        return number, "+84" + number[1:]

    def _national_id(self, city: City, born: date, female: bool, k: int) -> str:
        century = 0 if born.year < 2000 else 2
        return (f"{city.id_province}{century + int(female)}{born.year % 100:02d}"
                f"{(k * 738_917 + 104_729) % 10**6:06d}")

    # -- customers -----------------------------------------------------------------------------
    def generate(self, start: int, end: int) -> PortfolioChunk:
        ctx, rng = self.ctx, self.ctx.rng
        chunk = PortfolioChunk()
        n = end - start
        counts = self._product_counts(start, end)
        ids = ctx.bulk.ids("customers", n)
        for offset, (customer_id, n_products) in enumerate(zip(ids, counts, strict=True)):
            index = start + offset
            info = self._customer(chunk, customer_id, index)
            for _ in range(n_products):
                self._product(chunk, info)
            chunk.customers.append(info)
        # A few applications that never became a loan (rejected, withdrawn, in progress).
        for info in rng.sample(chunk.customers, k=max(1, n // 25)):
            self._application(chunk, info, None, None)
        return chunk

    def _product_counts(self, start: int, end: int) -> list[int]:
        """Products per customer of the slice: exact total, every customer one when possible,
        the rest spread at random (some customers hold several)."""
        rng = self.ctx.rng
        n = end - start
        total = (end * self.total_products // self.total_customers
                 - start * self.total_products // self.total_customers)
        if total < n:
            counts = [0] * n
            for i in rng.sample(range(n), total):
                counts[i] = 1
            return counts
        counts = [1] * n
        weights = [rng.choice((1, 1, 1, 2, 4)) for _ in range(n)]
        for i in rng.choices(range(n), weights, k=total - n):
            counts[i] += 1
        return counts

    def _customer(self, chunk: PortfolioChunk, customer_id: int, index: int) -> CustomerInfo:
        ctx, rng, pools = self.ctx, self.ctx.rng, self.ctx.pools
        sync = self.sync_at
        cif = str(10_000_000 + index)
        is_org = rng.random() < 0.08
        city = HCMC if rng.random() < 2 / 3 else HANOI
        district = rng.choice(city.districts)
        if is_org:
            name = rng.choice(pools.companies)
            tax = f"{city.tax_prefix}{(index * 73_856_093 + 7) % 10**8:08d}"
            segment = rng.choice(("SME", "SME", "MICRO"))
            chunk.rows["customers"].append((
                customer_id, cif, "ORGANIZATION", name, None, None, None, name, tax, tax,
                segment, "ACTIVE", "T24", sync))
            female = rng.random() < 0.4
        else:
            female = rng.random() < 0.48
            name = pools.person_name(rng, female)
            born = date(ctx.today.year - rng.randint(22, 65), rng.randint(1, 12),
                        rng.randint(1, 28))
            segment = rng.choices(("MASS", "AFFLUENT", "PRIORITY"), (75, 20, 5))[0]
            status = "INACTIVE" if rng.random() < 0.01 else "ACTIVE"
            chunk.rows["customers"].append((
                customer_id, cif, "INDIVIDUAL", name, born,
                self._national_id(city, born, female, index), "FEMALE" if female else "MALE",
                None, None, None, segment, status, "T24", sync))

        addresses = [self._address(chunk, cif, city, district, "WORK" if is_org else "HOME", True)]
        if not is_org and rng.random() < 0.25:
            addresses.append(
                self._address(chunk, cif, city, rng.choice(city.districts), "WORK", False))

        number, e164 = self._mobile()
        verified = rng.random() < 0.6
        chunk.rows["phones"].append((
            ctx.bulk.next_id("phones"), cif, None, "MOBILE", number, e164, True, verified,
            sync - timedelta(days=rng.randint(30, 900)) if verified else None, None, False,
            "T24", sync))
        if rng.random() < 0.3:
            second, second_e164 = self._mobile()
            by_crm = rng.random() < 0.3
            chunk.rows["phones"].append((
                ctx.bulk.next_id("phones"), cif, None, "MOBILE", second, second_e164, False,
                False, None, None, rng.random() < 0.05, "CRM" if by_crm else "T24",
                None if by_crm else sync))
        if is_org or rng.random() < 0.15:
            fixed, fixed_e164 = self._landline(city)
            chunk.rows["phones"].append((
                ctx.bulk.next_id("phones"), cif, None, "WORK" if is_org else "HOME", fixed,
                fixed_e164, False, False, None, None, False, "T24", sync))

        has_email = is_org or rng.random() < 0.35
        if has_email:
            if is_org:
                email = f"{rng.choice(('ketoan', 'info', 'lienhe'))}@{company_domain(name)}"
            else:
                parts = ascii_slug(name).split(".")
                email = (f"{parts[-1]}.{parts[0]}{rng.randint(1, 99)}"
                         f"@{rng.choice(EMAIL_DOMAINS)}")
            chunk.rows["emails"].append((
                ctx.bulk.next_id("emails"), cif, "WORK" if is_org else "PERSONAL", email, True,
                rng.random() < 0.5, "T24", sync))

        info = CustomerInfo(cif=cif, is_org=is_org, name=name, city=city,
                            district=district.name, mobile_e164=e164, addresses=addresses,
                            has_email=has_email)
        self._references(chunk, info, female)
        return info

    def _address(self, chunk: PortfolioChunk, cif: str, city: City, district: District,
                 kind: str, primary: bool) -> AddressInfo:
        ctx, rng = self.ctx, self.ctx.rng
        lat = round(district.lat + max(-0.02, min(0.02, rng.gauss(0, 0.007))), 6)
        lon = round(district.lon + max(-0.02, min(0.02, rng.gauss(0, 0.007))), 6)
        line1 = self._street_line(city)
        address_id = ctx.bulk.next_id("addresses")
        chunk.rows["addresses"].append((
            address_id, cif, kind, primary, rng.random() < 0.4, line1,
            rng.choice(district.wards), district.name, city.name, city.name, "VN",
            "700000" if city is HCMC else "100000", lat, lon, "T24", self.sync_at))
        return AddressInfo(address_id, kind, lat, lon)

    def _street_line(self, city: City) -> str:
        rng = self.ctx.rng
        street = rng.choice(self.ctx.pools.streets)
        number = rng.randint(1, 400)
        if city is HCMC:
            if rng.random() < 0.4:
                return f"{number}/{rng.randint(1, 60)} {street}"
            return f"{number} {street}"
        if rng.random() < 0.4:
            return f"Số {rng.randint(1, 80)} ngõ {number} phố {street}"
        return f"Số {number} {street}"

    def _references(self, chunk: PortfolioChunk, info: CustomerInfo, female: bool) -> None:
        ctx, rng, pools = self.ctx, self.ctx.rng, self.ctx.pools
        if info.is_org:
            relations = ["guarantor"] + (["colleague"] if rng.random() < 0.5 else [])
        else:
            n = rng.choices((0, 1, 2), (50, 35, 15))[0]
            names, weights = zip(*REF_RELATIONSHIPS, strict=True)
            relations = rng.choices(names, weights, k=n)
        for relation in relations:
            assert relation in RELATIONSHIP_TYPES
            ref_female = (not female) if relation == "spouse" else rng.random() < 0.5
            name = pools.person_name(rng, ref_female)
            if relation in _SAME_FAMILY and not info.is_org:
                name = info.name.split(" ", 1)[0] + " " + name.split(" ", 1)[1]
            ref_cif = f"R{20_000_000 + ctx.seq('reference')}"
            number, e164 = self._mobile()
            chunk.rows["reference_customers"].append((
                ctx.bulk.next_id("reference_customers"), ref_cif, info.cif, relation,
                "INDIVIDUAL", name,
                date(ctx.today.year - rng.randint(22, 70), rng.randint(1, 12), rng.randint(1, 28)),
                None, "FEMALE" if ref_female else "MALE", json.dumps({"phone": number}), "T24",
                self.sync_at))
            chunk.rows["phones"].append((
                ctx.bulk.next_id("phones"), None, ref_cif, "MOBILE", number, e164, True, False,
                None, None, False, "T24", self.sync_at))
            info.reference_phones.append(e164)

    # -- products ------------------------------------------------------------------------------
    def _dpd(self) -> int:
        rng = self.ctx.rng
        bucket = rng.choices(self._bucket_names, self._bucket_weights)[0]
        low, high = BUCKET_BOUNDS[bucket]
        dpd = low + min(int(rng.expovariate(1 / 150)), 1400) if high is None else rng.randint(
            low, high)
        assert bucket_for_dpd(dpd) == bucket
        return dpd

    def _product(self, chunk: PortfolioChunk, info: CustomerInfo) -> None:
        if not info.is_org and self.ctx.rng.random() < CARD_SHARE:
            info.products.append(self._card(chunk, info))
        else:
            info.products.append(self._loan(chunk, info))

    def _loan(self, chunk: PortfolioChunk, info: CustomerInfo) -> Product:
        ctx, rng = self.ctx, self.ctx.rng
        today = ctx.today
        names, weights = self._org_choices if info.is_org else self._loan_choices
        product = rng.choices(names, weights)[0]
        low, high, term_low, term_high, rate_low, rate_high = LOAN_PRODUCTS[product]
        original = _round_to(int(math.exp(rng.uniform(math.log(low), math.log(high)))),
                             10_000_000 if low >= 100_000_000 else 1_000_000)
        term = rng.randrange(term_low, term_high + 1, 6 if term_high >= 24 else 3)
        rate_bp = rng.randrange(rate_low, rate_high + 1, 25)
        dpd = self._dpd()
        overdue_months = math.ceil(dpd / 30)
        closed = dpd == 0 and rng.random() < 0.04
        if closed:
            elapsed = term + rng.randint(1, 24)
        else:
            elapsed = max(rng.randint(1, max(1, term - 1)), overdue_months + 1)
        disbursed = add_months(today, -elapsed)
        if not closed and (today - disbursed).days <= dpd + 30:
            disbursed = today - timedelta(days=dpd + 30 + rng.randint(0, 60))
        maturity = add_months(disbursed, term)
        account = f"LD{disbursed.year % 100:02d}{ctx.seq('loan'):08d}"
        principal_installment = original // term
        if closed:
            status, outstanding, due, min_pay, next_date = "CLOSED", 0, 0, 0, None
            close_date = max(disbursed + timedelta(days=30),
                             maturity - timedelta(days=rng.randint(0, 90)))
        else:
            close_date = None
            paid_months = max(0, min(term - 1, elapsed - overdue_months))
            principal = original * (term - paid_months) // term
            interest = principal * rate_bp // 120_000
            installment = _round_to(principal_installment + interest, 1000)
            overdue = overdue_months * installment
            penalty = overdue * dpd // 2000
            outstanding = _round_to(principal + overdue_months * interest + penalty, 1000)
            # consistent as the case view judges it (portal/cases/account_checks.py): a current
            # loan owes nothing now (no amount due, no minimum) and its next instalment is
            # ahead; a late one owes at least its minimum, and its next instalment falls after
            # the oldest unpaid one (today - dpd), one instalment every 30 days
            due = min(_round_to(overdue + penalty, 1000), outstanding) if dpd else 0
            min_pay = min(installment, due) if dpd else 0
            next_date = next_instalment(today, dpd) if dpd else \
                today + timedelta(days=rng.randint(1, 30))
            status = "OPEN"
            if dpd > 180 and rng.random() < 0.25:
                status = "WRITTEN_OFF"
            elif 0 < dpd <= 60 and rng.random() < 0.03:
                status = "RESTRUCTURED"
        chunk.rows["loans"].append((
            ctx.bulk.next_id("loans"), account, info.cif, "T24", self.sync_at, product, "VND",
            original, outstanding, due, min_pay, next_date, dpd, bucket_for_dpd(dpd), status,
            disbursed, maturity, close_date, _rate(rate_bp), term))
        self._bucket_history(chunk, account, dpd, disbursed, close_date)
        self._collateral(chunk, info, account, product, original, disbursed)
        if rng.random() < 0.35:
            self._application(chunk, info, account, (product, original, disbursed))
        return Product(True, account, product, dpd, status, outstanding, due, min_pay)

    def _bucket_history(self, chunk: PortfolioChunk, account: str, dpd: int, disbursed: date,
                        close_date: date | None) -> None:
        ctx, rng, today = self.ctx, self.ctx.rng, self.ctx.today
        rows = chunk.rows["loan_bucket_history"]

        def stay(bucket: str, stay_dpd: int, start: date, end: date | None) -> None:
            rows.append((ctx.bulk.next_id("loan_bucket_history"), account, bucket, stay_dpd,
                         start, end))

        if dpd == 0:
            cured = (close_date is None and rng.random() < 0.15
                     and (today - disbursed).days > 200)
            if cured:  # an earlier episode of 1-30 that was cured
                start = today - timedelta(days=rng.randint(60, 170))
                length = rng.randint(3, 28)
                stay("current", 0, disbursed, start - timedelta(days=1))
                stay("1-30", 1, start, start + timedelta(days=length - 1))
                stay("current", 0, start + timedelta(days=length), None)
            else:
                stay("current", 0, disbursed, close_date)
            return
        missed = today - timedelta(days=dpd)
        stay("current", 0, disbursed, missed)
        for name, low, high in BUCKETS[1:]:
            if low > dpd:
                break
            current = high is None or dpd <= high
            stay(name, dpd if current else low, missed + timedelta(days=low),
                 None if current else missed + timedelta(days=high))

    def _collateral(self, chunk: PortfolioChunk, info: CustomerInfo, account: str,
                    product: str, original: int, disbursed: date) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        if product == "AUTO_LOAN":
            kind = "VEHICLE"
        elif product == "MORTGAGE" or (product == "SME_TERM_LOAN" and rng.random() < 0.6):
            kind = "PROPERTY"
        else:
            return
        number = f"COL{ctx.seq('collateral'):09d}"
        vehicle = (None,) * 6
        prop = (None,) * 3
        if kind == "VEHICLE":
            make, model, engine = rng.choice(VEHICLES)
            year = disbursed.year - rng.randint(0, 2)
            plate_no = rng.randint(10_000, 99_999)
            plate = (f"{rng.choice(info.city.plate_codes)}{rng.choice('AFGHK')}-"
                     f"{plate_no // 100:03d}.{plate_no % 100:02d}")
            vehicle = (make, model, year, plate, "".join(rng.choices(VIN_CHARS, k=17)),
                       f"{engine}{rng.randint(1_000_000, 9_999_999)}")
            value = _round_to(original * rng.randint(115, 140) // 100, 10_000_000)
            description = f"Xe ô tô {make} {model} {year}, biển số {plate}"
        else:
            district = rng.choice(info.city.districts)
            address = (f"{self._street_line(info.city)}, {rng.choice(district.wards)}, "
                       f"{district.name}, {info.city.name}")
            area = rng.randint(100, 1000) if product == "SME_TERM_LOAN" else rng.randint(40, 200)
            prop = (address, f"{area}.{rng.randint(0, 99):02d}",
                    f"{rng.choice(('CS', 'CT', 'BĐ', 'CH'))} {rng.randint(10**5, 10**6 - 1)}")
            value = _round_to(original * rng.randint(140, 200) // 100, 10_000_000)
            description = f"Nhà đất tại {address}, diện tích {area} m²"
        chunk.rows["collaterals"].append((
            ctx.bulk.next_id("collaterals"), number, info.cif, kind, description, value, "VND",
            disbursed - timedelta(days=rng.randint(5, 30)), *vehicle, *prop, "T24",
            self.sync_at))
        chunk.rows["loan_collaterals"].append((account, number, "T24", self.sync_at))

    def _application(self, chunk: PortfolioChunk, info: CustomerInfo, account: str | None,
                     loan: tuple[str, int, date] | None) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        if loan is None:
            product = rng.choice([p for p, _ in (ORGANIZATION_LOANS if info.is_org
                                                 else INDIVIDUAL_LOANS)])
            low, high = LOAN_PRODUCTS[product][:2]
            requested = _round_to(rng.randint(low, high), 1_000_000)
            applied = ctx.today - timedelta(days=rng.randint(1, 400))
            status = rng.choices(("REJECTED", "WITHDRAWN", "IN_REVIEW"), (60, 15, 25))[0]
            decided = None if status == "IN_REVIEW" else applied + timedelta(
                days=rng.randint(1, 10))
            if decided and decided > ctx.today:
                decided = ctx.today
            approved, disbursed = None, None
        else:
            product, approved, disbursed = loan
            requested = _round_to(approved * rng.randint(100, 130) // 100, 1_000_000)
            decided = disbursed - timedelta(days=rng.randint(1, 7))
            applied = decided - timedelta(days=rng.randint(2, 20))
            status = "DISBURSED"
        year = applied.year
        application_id = f"LOS-{year}-{ctx.seq('application'):07d}"
        channels, weights = zip(*APP_CHANNELS, strict=True)
        income = None if info.is_org else _round_to(rng.randint(8, 80) * 1_000_000, 500_000)
        employer = None if info.is_org else rng.choice(ctx.pools.companies)
        raw = json.dumps({"credit_score": rng.randint(480, 820),
                          "risk_grade": rng.choice("ABBCCD"),
                          "officer": f"RM{rng.randint(100, 999)}"})
        chunk.rows["loan_applications"].append((
            ctx.bulk.next_id("loan_applications"), application_id, info.cif, account, product,
            requested, approved, "VND", applied, decided, disbursed, income, employer,
            rng.choices(channels, weights)[0], status, raw, "LOS", self.sync_at))

    def _card(self, chunk: PortfolioChunk, info: CustomerInfo) -> Product:
        ctx, rng, today = self.ctx, self.ctx.rng, self.ctx.today
        product = rng.choice(list(CARD_PRODUCTS))
        bin_, low, high = CARD_PRODUCTS[product]
        limit = _round_to(rng.randint(low, high), 5_000_000)
        dpd = self._dpd()
        status, case_id, case_status = "ACTIVE", None, None
        k = ctx.seq("card")
        if dpd == 0:
            closed = rng.random() < 0.03
            outstanding = 0 if closed else _round_to(limit * rng.randint(5, 100) // 100, 1000)
            min_due = 0 if closed else max(min(outstanding, 200_000),
                                           _round_to(outstanding * 5 // 100, 1000))
            overdue = 0
            due_date = None if closed else today + timedelta(days=rng.randint(1, 25))
            status = "CLOSED" if closed else "ACTIVE"
        else:
            months = math.ceil(dpd / 30)
            outstanding = _round_to(limit * rng.randint(70, 110) // 100, 1000)
            monthly = max(200_000, _round_to(outstanding * 5 // 100, 1000))
            overdue = min(outstanding, monthly * months + 200_000 * months)
            min_due = min(outstanding, overdue + monthly)
            due_date = next_instalment(today, dpd)  # the next statement's, after the missed ones
            status = "BLOCKED" if dpd > 60 else "ACTIVE"
            case_id = f"W4CS{k:08d}"
            case_status = "LEGAL" if dpd > 180 else ("IN_COLLECTION" if dpd > 30 else "OPEN")
        masked = f"{bin_[:4]} {bin_[4:]}** **** {(k * 7919) % 10_000:04d}"
        chunk.rows["cards"].append((
            ctx.bulk.next_id("cards"), f"W4C{k:09d}", info.cif, masked, product, "VND", limit,
            outstanding, min_due, due_date, dpd, bucket_for_dpd(dpd), status, case_id,
            case_status, "W4", self.sync_at))
        return Product(False, f"W4C{k:09d}", product, dpd, status, outstanding, overdue,
                       min_due)
