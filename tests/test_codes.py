"""The code table (mappings/codes/ot_codes.csv) and the data typed beside it in the fee schedules."""

from __future__ import annotations

import csv
import re
import shutil
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from otedi import config
from otedi.charges.validate import validate_rows
from otedi.coding import codes
from otedi.errors import ConfigError
from tests.test_validate import TODAY, frame_of

MAPPINGS = config.REPO_ROOT / "mappings"
PFS = MAPPINGS / "fees" / "medicare_pfs_2026_national.csv"
DEMO = {"ohio_medicaid_ot_demo_2026.csv": Decimal("0.70"), "uhc_ot_demo_2026.csv": Decimal("1.10")}

# Codes whose PFS MULT PROC does not follow "5 <=> always therapy", each with its reason.
MPPR_EXCEPTIONS = {
    # Status B / I rows carry MULT PROC 9 (concept does not apply) in PPRRVU2026; the codes are still
    # "always therapy" codes (ot_billing_rules.md §1.2: 97010 bundled, 97014 invalid for Medicare).
    "97010": "status B: MULT PROC 9 in CMS PPRRVU2026",
    "97014": "status I: MULT PROC 9 in CMS PPRRVU2026",
}


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def table() -> dict[str, codes.CodeInfo]:
    return codes.code_table()


def test_table_loads_with_the_new_columns(table):
    assert len(table) > 40
    for info in table.values():
        assert info.disciplines and info.disciplines <= codes.DISCIPLINES
        assert isinstance(info.evaluation, bool) and isinstance(info.needs_documentation, bool)
        assert isinstance(info.dme, bool)
        assert info.source


def test_pt_evaluation_is_pt_only_and_an_evaluation(table):
    for code in ("97161", "97162", "97163", "97164"):
        info = table[code]
        assert info.disciplines == frozenset({"PT"})
        assert info.evaluation and not info.timed and info.therapy == "always"


def test_discipline_specific_codes(table):
    assert all(table[c].disciplines == {"OT"} and table[c].evaluation for c in ("97165", "97166", "97167", "97168"))
    assert all(table[c].disciplines == {"SLP"} for c in ("92507", "92508", "92521", "92522", "92523", "92524"))
    assert all(table[c].evaluation for c in ("92521", "92522", "92523", "92524", "92610"))
    assert table["92526"].disciplines == table["92610"].disciplines == {"OT", "SLP"}
    assert not table["97530"].evaluation and "OT" in table["97530"].disciplines


@pytest.mark.parametrize("code", ["97532", "G0515"])
def test_deleted_cognitive_codes_are_invalid_in_2026_and_name_the_replacement(table, code):
    info = table[code]
    assert not info.valid_on(date(2026, 3, 2))
    assert info.effective_to == date(2019, 12, 31)
    assert "97129" in info.replaced_by and "97130" in info.replaced_by
    charges, issues = validate_rows(frame_of({"cpt": code, "minutes": "15"}), file="/drop/charges.csv", today=TODAY)
    assert charges == []
    (issue,) = [i for i in issues if i.rule == "cpt-deleted"]
    assert f"cpt {code} was deleted on 2020-01-01" in issue.message
    assert "97129" in issue.message and "97130" in issue.message


def test_unlisted_codes_need_documentation(table):
    assert table["97799"].needs_documentation and table["97139"].needs_documentation
    assert not table["97530"].needs_documentation


def test_orthoses_are_dme(table):
    assert table["L3808"].dme and table["L3808"].therapy == "none"
    assert all(info.dme == code.startswith("L") for code, info in table.items())


def test_work_hardening_units_and_add_on(table):
    assert (table["97545"].timed, table["97545"].unit_minutes, table["97545"].medicare_status) == (True, 120, "R")
    assert (table["97546"].unit_minutes, table["97546"].addon_to, table["97546"].medicare_status) == (60, "97545", "R")


def test_every_timed_code_has_unit_minutes(table):
    assert all(info.unit_minutes for info in table.values() if info.timed)
    assert all(info.unit_minutes is None for info in table.values() if not info.timed)


def test_add_ons_name_a_primary_in_the_table(table):
    assert all(info.addon_to in table for info in table.values() if info.addon_to)


def test_mult_proc_5_means_always_therapy(table):
    pfs = {r["hcpcs"]: r for r in _rows(PFS)}
    mismatched = {code for code, info in table.items() if code in pfs
                  and (pfs[code]["mult_proc_indicator"] == "5") != (info.therapy == "always")}
    assert mismatched == set(MPPR_EXCEPTIONS)


def test_pfs_codes_are_in_the_code_table_with_the_same_status(table):
    for r in _rows(PFS):
        assert r["hcpcs"] in table, r["hcpcs"]
        assert table[r["hcpcs"]].medicare_status == r["status_code"], r["hcpcs"]


def test_pfs_rows_add_up():
    """Totals are the sum of their RVUs and the national amount is round(total NF RVU x CF, 2)."""
    for r in _rows(PFS):
        work, nf_pe, f_pe, mp = (Decimal(r[k]) for k in ("work_rvu", "nonfacility_pe_rvu", "facility_pe_rvu", "mp_rvu"))
        assert work + nf_pe + mp == Decimal(r["nonfacility_total_rvu"]), r["hcpcs"]
        assert work + f_pe + mp == Decimal(r["facility_total_rvu"]), r["hcpcs"]
        assert r["conversion_factor"] == "33.4009", r["hcpcs"]
        national = _cents(Decimal(r["nonfacility_total_rvu"]) * Decimal(r["conversion_factor"]))
        assert national == Decimal(r["nonfacility_national_amount"]), r["hcpcs"]


@pytest.mark.parametrize("name", sorted(DEMO))
def test_demo_rates_follow_their_stated_share_of_the_medicare_amount(name):
    national = {r["hcpcs"]: Decimal(r["nonfacility_national_amount"]) for r in _rows(PFS)}
    for r in _rows(MAPPINGS / "fees" / name):
        assert Decimal(r["allowed_per_unit"]) == _cents(national[r["hcpcs"]] * DEMO[name]), r["hcpcs"]


@pytest.fixture
def bad_table(tmp_path, monkeypatch):
    """A copy of the mappings whose code table the test edits."""
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS / "codes", root / "codes")
    monkeypatch.setenv("OTEDI_MAPPINGS", str(root))
    codes._load.cache_clear()
    yield root / "codes" / "ot_codes.csv"
    codes._load.cache_clear()


def _edit(path: Path, code: str, column: str, value: str) -> None:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    for r in rows:
        if r["code"] == code:
            r[column] = value
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("disciplines", "OT RN", "unknown discipline(s) RN"),
    ("disciplines", "", "disciplines is empty"),
    ("evaluation", "maybe", "evaluation must be yes or no"),
    ("therapy", "often", "therapy must be one of"),
])
def test_bad_value_is_a_config_error_with_file_and_line(bad_table, column, value, message):
    _edit(bad_table, "97161", column, value)
    line = next(n for n, r in enumerate(_rows(bad_table), start=2) if r["code"] == "97161")
    with pytest.raises(ConfigError, match=rf"ot_codes.csv line {line}: .*{re.escape(message)}"):
        codes.code_table()


def test_missing_column_is_a_config_error(bad_table):
    with open(bad_table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    fields = [c for c in rows[0] if c != "dme"]
    with open(bad_table, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ConfigError, match="line 1: missing column"):
        codes.code_table()
