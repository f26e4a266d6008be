"""T24 mapping profiles (integrations/t24/mapping.py): a mapping file's mistakes named by file,
line and field; multi-values with jBASE's marks or a file's own separators; code tables, T24
dates and terms; bills turned into DPD and amounts due; CSV as the Data Framework writes it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from integrations.fields import Quarantine, Row
from integrations.sandbox.t24_files import SeedSource, generate_day
from integrations.t24.formats import T24FormatError
from integrations.t24.manifest import verify
from integrations.t24.mapping import (
    MAPPINGS_DIR,
    Bills,
    MappingError,
    ReadContext,
    default_profile,
    load_profile,
    records_of,
)

BASE = date(2026, 11, 24)
DFE_TEXT = (MAPPINGS_DIR / "t24-dfe.toml").read_text(encoding="utf-8")


def bank_file(tmp_path: Path, old: str, new: str, name: str = "bank.toml") -> Path:
    assert old in DFE_TEXT
    path = tmp_path / name
    path.write_text(DFE_TEXT.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


def test_the_shipped_profiles_state_their_versions():
    crm, dfe = load_profile("crm-json"), load_profile("t24-dfe")
    assert (crm.name, crm.native, list(crm.sources)) == (
        "crm-json", True,
        ["customers", "reference_customers", "collaterals", "loans", "loan_collaterals"])
    assert default_profile() is crm
    assert (dfe.name, dfe.version, dfe.native) == ("t24-dfe", "2026.12.1", False)
    assert dfe.target("aa_arrangements") == dfe.target("ld_loans") == "loans"
    assert dfe.entity_of("aa_bill_details") is None


@pytest.mark.parametrize("old, new, field, reason", [
    ('due_date = { from = "PAYMENT.DATE", convert = "date" }',
     'due_date = { from = "PAYMENT.DATE", convert = "datum" }', "due_date",
     "unknown converter 'datum'"),
    ('segment = { from = "SECTOR", code = "sector_segment" }',
     'segment = { from = "SECTOR", code = "sectors" }', "segment", "no code table 'sectors'"),
    ('gender = "GENDER"', 'colour = "GENDER"', "colour", "customers has no field 'colour'"),
    ('dpd = { derived = "days_past_due" }\ndue_amount = { derived = "overdue_amount" }\n'
     'next_payment_date', 'dpd = { derived = "days_late" }\ndue_amount = { derived = '
     '"overdue_amount" }\nnext_payment_date', "dpd", "unknown derived value 'days_late'"),
    ('interest_rate = { from = "EFFECTIVE.RATE", value = 1 }',
     'interest_rate = { from = "EFFECTIVE.RATE", value = 0 }', "interest_rate",
     "value is a position from 1"),
    ('gender = "GENDER"', 'gender = { form = "GENDER" }', "gender", "unknown option(s) form"),
])
def test_a_mapping_mistake_names_the_file_the_line_and_the_field(tmp_path, old, new, field,
                                                                  reason):
    path = bank_file(tmp_path, old, new)
    with pytest.raises(MappingError) as error:
        load_profile(path)
    line = line_of(path, new.split("\n")[0])
    assert (error.value.file, error.value.line, error.value.field_name) == ("bank.toml", line,
                                                                            field)
    assert str(error.value).startswith(f"mapping file bank.toml, line {line}, field {field}: ")
    assert reason in str(error.value)


def test_an_unmapped_key_a_bad_order_and_bad_toml_are_refused(tmp_path):
    path = bank_file(tmp_path, 'cif = "@ID"\n', "")
    with pytest.raises(MappingError, match="the key 'cif' of customers is not mapped") as error:
        load_profile(path)
    assert error.value.line == line_of(path, "[sources.customers.fields]")

    # bills after their arrangements: they could not be read first
    moved = DFE_TEXT.replace('related_to = "aa_arrangements"', 'related_to = "customers"')
    path = tmp_path / "order.toml"
    path.write_text(moved, encoding="utf-8")
    with pytest.raises(MappingError, match="related_to 'customers' must name a source listed "
                                           "after this one") as error:
        load_profile(path)
    assert error.value.line == line_of(path, 'related_to = "customers"')

    path = bank_file(tmp_path, '[sources.ld_loans]\n', '[sources.ld_loans\n', "broken.toml")
    with pytest.raises(MappingError, match="not valid TOML") as error:
        load_profile(path)
    assert error.value.line == line_of(path, "[sources.ld_loans")

    path = bank_file(tmp_path, 'delimiter = ","', 'delimiter = ",,"', "marks.toml")
    with pytest.raises(MappingError, match="delimiter must be one character"):
        load_profile(path)
    with pytest.raises(MappingError, match="no such mapping profile or file: 't24-xyz'"):
        load_profile("t24-xyz")


def _customers(profile, path: Path) -> list[Row | Quarantine]:
    return list(records_of(profile, "customers", path, ReadContext(BASE)))


def test_default_marks_are_jbase_value_and_sub_value_marks(tmp_path):
    """A file that names no marks reads jBASE's char 253 (values) and 252 (sub-values)."""
    path = tmp_path / "plain.toml"
    path.write_text("\n".join(line for line in DFE_TEXT.splitlines()
                              if not line.startswith(("value_mark", "subvalue_mark"))),
                    encoding="utf-8")
    profile = load_profile(path)
    assert (profile.value_mark, profile.subvalue_mark) == (chr(253), chr(252))
    data = tmp_path / "t24_customers_20261124.csv"
    data.write_text(
        "@ID,NAME.1,SECTOR,SMS.1,EMAIL.1,STREET,ADDRESS,LEGAL.ID,LEGAL.DOC.NAME\n"
        f"300001,Tran Van Hai,2001,0912000001{chr(253)}0912000002,hai@example.vn,"
        f"1 Le Loi{chr(253)}2 Hai Ba Trung,Ben Nghe{chr(252)}District 1{chr(253)}"
        f"Da Kao{chr(252)}District 1,0301234567{chr(253)}0107654321,"
        f"BUSINESS.REG{chr(253)}TAX.ID\n", encoding="utf-8")
    (row,) = _customers(profile, data)
    assert isinstance(row, Row), row
    assert (row.values["type"], row.values["segment"], row.values["company_name"]) == (
        "ORGANIZATION", "SME", "Tran Van Hai")
    assert (row.values["registration_number"], row.values["tax_id"],
            row.values["national_id"]) == ("0301234567", "0107654321", None)
    assert [(p["number_e164"], p["is_primary"]) for p in row.contacts["phones"]] == [
        ("+84912000001", True), ("+84912000002", False)]
    assert [(a["line1"], a["ward"], a["district"]) for a in row.contacts["addresses"]] == [
        ("1 Le Loi", "Ben Nghe", "District 1"), ("2 Hai Ba Trung", "Da Kao", "District 1")]


def test_a_file_sets_its_own_separators(tmp_path):
    profile = load_profile(bank_file(
        tmp_path, 'delimiter = ","', 'delimiter = ";"\n', "semi.toml"))
    text = (tmp_path / "semi.toml").read_text(encoding="utf-8")
    text = text.replace('value_mark = "\\uf8fd"', 'value_mark = "]"').replace(
        'subvalue_mark = "\\uf8fc"', 'subvalue_mark = "\\\\"')
    (tmp_path / "semi.toml").write_text(text, encoding="utf-8")
    profile = load_profile(tmp_path / "semi.toml")
    assert (profile.dialect.delimiter, profile.value_mark, profile.subvalue_mark) == (
        ";", "]", "\\")
    data = tmp_path / "t24_customers_20261124.csv"
    data.write_text(
        "@ID;NAME.1;SECTOR;SMS.1;STREET;ADDRESS\n"
        '300002;"Lý Thị Mỹ; chi nhánh";1003;0912000003]0912000004;'
        "5 Lý Thái Tổ;Hàng Trống\\Hoàn Kiếm\n", encoding="utf-8")
    (row,) = _customers(profile, data)
    assert row.values["name"] == "Lý Thị Mỹ; chi nhánh"  # "ý": text, not a mark
    assert row.values["segment"] == "PRIORITY"
    assert len(row.contacts["phones"]) == 2
    assert [(a["line1"], a["ward"], a["district"]) for a in row.contacts["addresses"]] == [
        ("5 Lý Thái Tổ", "Hàng Trống", "Hoàn Kiếm")]


def test_bad_values_are_quarantined_with_the_field_and_the_line(tmp_path):
    dfe = load_profile("t24-dfe")
    data = tmp_path / "t24_customers_20261124.csv"
    data.write_text(
        "@ID,NAME.1,SECTOR,DATE.OF.BIRTH,CUSTOMER.STATUS\n"
        "400001,Ngô Văn A,1001,19800230,1\n"
        "400002,Ngô Văn B,1001,19800201,7\n"
        "400003,Ngô Văn C,1001\n"
        "400004,,1001,19800201,1\n"
        "400005,Ngô Văn E,1001,19800201,1\n", encoding="utf-8")
    items = _customers(dfe, data)
    reasons = [(i.reason, i.line_number, i.record_key) for i in items
               if isinstance(i, Quarantine)]
    assert reasons == [
        ("DATE.OF.BIRTH → date_of_birth: not a T24 date (YYYYMMDD): '19800230'", 2, "400001"),
        ("CUSTOMER.STATUS → status: code '7' is not in code table customer_status", 3,
         "400002"),
        ("3 fields, the header has 5", 4, None),
        ("NAME.1 → name: required", 5, "400004"),
    ]
    assert isinstance(items[-1], Row) and items[-1].values["date_of_birth"] == date(1980, 2, 1)

    headless = tmp_path / "t24_ld_loans_20261124.csv"
    headless.write_text("CUSTOMER.ID,AMOUNT\n100,5\n", encoding="utf-8")
    with pytest.raises(T24FormatError, match=r"header lacks the field\(s\) the mapping reads: "
                                             r"@ID"):
        list(records_of(dfe, "ld_loans", headless, ReadContext(BASE)))


def test_bills_give_dpd_and_amounts_relative_to_the_business_date():
    bills = Bills(BASE)
    bills.add("AA1", date(2026, 10, 1), Decimal("100.50"), True)
    bills.add("AA1", date(2026, 9, 1), Decimal("200"), True)
    bills.add("AA1", date(2026, 8, 1), Decimal("999"), False)  # repaid: not counted
    bills.add("AA1", BASE, Decimal("50"), True)  # due today: next, not overdue
    bills.add("AA1", date(2026, 12, 24), Decimal("70"), True)
    assert [bills.derived(n, "AA1") for n in ("days_past_due", "overdue_amount",
                                              "next_due_date", "next_due_amount",
                                              "unpaid_bills")] == [
        (BASE - date(2026, 9, 1)).days, Decimal("300.50"), BASE, Decimal("50"), 4]
    assert [bills.derived(n, "AA9") for n in ("days_past_due", "overdue_amount",
                                              "next_due_date")] == [0, Decimal("0.00"), None]


def test_term_and_multi_value_conversions(tmp_path):
    dfe = load_profile("t24-dfe")
    vm, sm = dfe.value_mark, dfe.subvalue_mark
    data = tmp_path / "t24_aa_arrangements_20261124.csv"
    data.write_text(
        "@ID,CUSTOMER,PRODUCT,CURRENCY,ARR.STATUS,AMOUNT,OPEN.BALANCE,TERM,EFFECTIVE.RATE\n"
        f"AA1,1,HOME.LOAN,VND,CURRENT,100,-80,5Y,7.5{vm}9\n"
        f"AA2,1,HOME.LOAN,VND,CURRENT,100,-80,10Q,7.5\n"
        f"AA3,1,HOME.LOAN,VND,CURRENT,100,-8{sm}0,12M,7.5\n", encoding="utf-8")
    context = ReadContext(BASE)
    one, two, three = records_of(dfe, "aa_arrangements", data, context)
    assert (one.values["term"], one.values["interest_rate"], one.values["outstanding"],
            one.values["product_type"], one.values["dpd"]) == (
        60, Decimal("7.5000"), Decimal("80.00"), "MORTGAGE", 0)
    assert two.reason == "TERM → term: not a T24 term (e.g. 12M, 5Y, 360D): '10Q'"
    assert three.reason.startswith("OPEN.BALANCE → outstanding: ")


def test_the_sandbox_writes_either_profile(tmp_path):
    source = SeedSource(30, 45, business_date=BASE)
    dfe_set = generate_day(tmp_path / "dfe", source, profile="t24-dfe")
    assert verify(dfe_set, profile=load_profile("t24-dfe")).ok
    refused = verify(dfe_set)  # read as crm-json: files it has no source for
    assert not refused.ok and "not a source of the mapping profile 'crm-json'" in \
        refused.errors[0]
    crm_set = generate_day(tmp_path / "crm", source)
    assert verify(crm_set).ok
    assert sorted(p.suffix for p in (tmp_path / "dfe").iterdir()) == [".csv"] * 7 + [".json"]


def test_the_worked_example_of_the_docs_loads(tmp_path):
    """docs/integrations.md §1.9's bank mapping file, as printed there, reads its extract."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "integrations.md").read_text(
        encoding="utf-8")
    example = docs.split("**Worked example: a bank's own extract.**", 1)[1]
    example = example.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "bank-t24.toml").write_text(example, encoding="utf-8")
    profile = load_profile(tmp_path / "bank-t24.toml")
    assert (profile.name, profile.version) == ("bank-t24", "2027.01.1")
    data = tmp_path / "t24_customers_20261124.csv"
    data.write_text("CUS.ID;FULL.NAME;SEGMENT.CODE;MOBILES\n"
                    "500001;Đỗ Thị Lý;R2;0912000005]0912000006\n", encoding="utf-8")
    (row,) = _customers(profile, data)
    assert (row.key, row.values["name"], row.values["segment"], row.values["type"]) == (
        "500001", "Đỗ Thị Lý", "AFFLUENT", "INDIVIDUAL")
    assert [p["number_e164"] for p in row.contacts["phones"]] == ["+84912000005",
                                                                 "+84912000006"]


def test_a_mapped_profile_reads_json_lines_too(tmp_path):
    """Beside CSV: T24 field names in JSON Lines, a JSON list being a field's values."""
    data = tmp_path / "t24_customers_20261124.jsonl"
    data.write_text('{"@ID": "600001", "NAME.1": ["Vũ Văn Khải", "VU VAN KHAI"], '
                    '"SECTOR": 1002, "SMS.1": ["0912000007", "0912000008"], '
                    '"DATE.OF.BIRTH": "19750505"}\n', encoding="utf-8")
    (row,) = _customers(load_profile("t24-dfe"), data)
    assert (row.values["name"], row.values["segment"], row.values["date_of_birth"]) == (
        "Vũ Văn Khải", "AFFLUENT", date(1975, 5, 5))
    assert len(row.contacts["phones"]) == 2
