import shutil
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from openpyxl import Workbook

from otedi import config
from otedi.coding.ncci import (
    aoc_issues, mue_issues, ncci_currency_issue, ncci_tables, ptp_issues, read_mue, read_ptp)
from otedi.coding.result import CodedLine, Rendering
from otedi.errors import ConfigError
from otedi.issues import Severity
from tests.test_units import charge

DOS = date(2026, 3, 2)


def line(charge_id, cpt, units=1, modifiers=("GO",), npi="1234567893", day=DOS):
    c = replace(charge(charge_id, cpt, 15 * units), rendering_npi=npi, service_date=day)
    return CodedLine(c, units, modifiers, Decimal("50.00"))


def test_deleted_97140_97530_edit_does_not_fire():
    edits = ncci_tables().ptp[("97140", "97530")]
    assert [(e.effective, e.deletion, e.modifier_indicator) for e in edits] == [
        (date(2000, 7, 1), date(2019, 12, 31), "1")]
    assert ncci_tables().ptp_edit("97140", "97530", date(2019, 12, 30)) is not None
    assert ptp_issues([line("A", "97140", 2), line("B", "97530", 2)], modifier_on_either_column=True) == []


def test_active_indicator_1_pair_holds_the_column_2_code():
    [issue] = ptp_issues([line("A", "97530", 2), line("B", "97750", 1)], modifier_on_either_column=True)
    assert (issue.severity, issue.rule, issue.charge_id, issue.value) == (Severity.HOLD, "ncci-ptp", "B", "97530/97750")
    assert "97750 (charge B) is bundled into 97530 (charge A)" in issue.message and "2026-03-02" in issue.message


def test_group_with_one_on_one_code_holds():
    [issue] = ptp_issues([line("A", "97150"), line("B", "97530", 2)], modifier_on_either_column=True)
    assert issue.charge_id == "B" and issue.value == "97150/97530"


@pytest.mark.parametrize("mod", ["59", "XU", "XE", "XS", "XP"])
def test_distinct_service_modifier_passes_indicator_1(mod):
    assert ptp_issues([line("A", "97530", 2), line("B", "97750", 1, ("GO", mod))],
                      modifier_on_either_column=False) == []
    # Medicare accepts it on either code since 2019-07-01
    assert ptp_issues([line("A", "97530", 2, ("GO", mod)), line("B", "97750")], modifier_on_either_column=True) == []


def test_modifier_on_column_1_only_counts_where_either_column_is_accepted():
    lines = [line("A", "97530", 2, ("GO", "59")), line("B", "97750")]
    [issue] = ptp_issues(lines, modifier_on_either_column=False)
    assert issue.charge_id == "B" and "add 59 or XE/XS/XP/XU to 97750" in issue.message


def test_indicator_0_holds_even_with_59():
    [issue] = ptp_issues([line("A", "97166"), line("B", "97750", 1, ("GO", "59"))], modifier_on_either_column=True)
    assert issue.charge_id == "B" and "modifier indicator 0" in issue.message


def test_indicator_9_and_other_rendering_provider_do_not_fire():
    assert ptp_issues([line("A", "97530"), line("B", "97166")], modifier_on_either_column=True) == []
    assert ptp_issues([line("A", "97530", 2), line("B", "97750", npi="1987654328")],
                      modifier_on_either_column=True) == []


def test_mue_date_of_service_edit_sums_lines():
    assert mue_issues([line("A", "97530", 6)]) == []
    [issue] = mue_issues([line("A", "97530", 7)])
    assert (issue.severity, issue.rule, issue.charge_id, issue.value) == (Severity.HOLD, "mue", "A", "7")
    assert "97530 on 2026-03-02: 7 units on the date of service exceed the MUE of 6" in issue.message
    [issue] = mue_issues([line("A", "97166"), line("B", "97166")])
    assert "2 units on the date of service exceed the MUE of 1" in issue.message


def test_add_on_without_primary_holds():
    [issue] = aoc_issues([line("A", "97130", 2)])
    assert (issue.severity, issue.rule, issue.charge_id) == (Severity.HOLD, "ncci-aoc", "A")
    assert "needs its primary code 97129" in issue.message
    assert aoc_issues([line("A", "97129"), line("B", "97130", 2)]) == []
    assert aoc_issues([line("A", "97550"), line("B", "97551")]) == []


CMS_PTP_HEADER = ["Column 1", "Column 2", "*=in existence prior to 1996", "Effective Date",
                  "Deletion Date *=no data", "Modifier 0=not allowed 1=allowed 9=not applicable", "PTP Edit Rationale"]
PREAMBLE = ["CPT codes, descriptions and other data only are copyright 2025 American Medical Association."]


def test_reads_cms_ptp_xlsx_with_preamble(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(PREAMBLE)
    sheet.append([])
    sheet.append(CMS_PTP_HEADER)
    sheet.append(["97530", "97750", None, "20200101", "*", "1", "More extensive procedure"])
    sheet.append(["97140", "97530", None, 20000701, 20191231, 1, "Mutually exclusive procedures"])
    book.save(tmp_path / "ptp.xlsx")
    edits = read_ptp(tmp_path / "ptp.xlsx")
    assert [(e.column1, e.column2, e.effective, e.deletion, e.modifier_indicator) for e in edits] == [
        ("97530", "97750", date(2020, 1, 1), None, "1"),
        ("97140", "97530", date(2000, 7, 1), date(2019, 12, 31), "1")]


def test_reads_cms_ptp_text_with_two_row_header(tmp_path):
    path = tmp_path / "ptp.txt"
    path.write_text("\n".join([
        PREAMBLE[0], "",
        "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion Date\tModifier\tPTP Edit Rationale",
        "\t\tprior to 1996\tDate\t*=no data\t0=not allowed 1=allowed 9=not applicable\t",
        "97166\t97750\t\t20200101\t*\t0\tMisuse of Column Two code with Column One code",
    ]) + "\n")
    [edit] = read_ptp(path)
    assert (edit.column1, edit.column2, edit.effective, edit.deletion, edit.modifier_indicator) == (
        "97166", "97750", date(2020, 1, 1), None, "0")


def test_reads_cms_mue_csv(tmp_path):
    path = tmp_path / "mue.csv"
    path.write_text("\n".join([
        '"Medicare NCCI Practitioner Services MUE Table - Effective 2026-07-01"',
        '"CPT codes and descriptions only are copyright 2025 American Medical Association."',
        '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"',
        '"97110","6","3 Date of Service Edit: Clinical","Clinical: Data"',
        '"97165","1","2 Date of Service Edit: Policy","CMS Policy"',
    ]) + "\n")
    assert [(e.code, e.value, e.adjudication_indicator) for e in read_mue(path)] == [("97110", 6, 3), ("97165", 1, 2)]


def test_sources_yaml_selects_the_dropped_in_quarter(tmp_path, monkeypatch):
    root = tmp_path / "mappings"
    shutil.copytree(config.mappings_dir(), root)
    (root / "ncci" / "mue_2026q3.csv").write_text(
        '"Practitioner MUE table"\n"HCPCS/CPT Code","Practitioner Services MUE Values",'
        '"MUE Adjudication Indicator","MUE Rationale"\n"97530","4","3 Date of Service Edit: Clinical","Clinical: Data"\n')
    sources = (root / "ncci" / "sources.yaml").read_text()
    (root / "ncci" / "sources.yaml").write_text(
        sources.replace("  - mue_practitioner_ot.csv", "  - mue_2026q3.csv").replace('"2024Q3"', '"2026Q3"'))
    monkeypatch.setenv("OTEDI_MAPPINGS", str(root))
    tables = ncci_tables()
    assert tables.vintage == "2026Q3" and tables.mue["97530"].value == 4 and "97110" not in tables.mue
    [issue] = mue_issues([line("A", "97530", 5)])
    assert "MUE of 4" in issue.message and "2026Q3" in issue.source


# --- programs: Medicare and Medicaid edit sets ----------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "ncci_medicaid"
FALLBACK = "Medicaid NCCI not loaded: Medicare practitioner edits used"


def test_medicaid_set_is_the_labelled_medicare_fallback():
    medicare, medicaid = ncci_tables(), ncci_tables("medicaid")
    assert (medicare.program, medicare.fallback, medicare.quarter) == ("medicare", False, "2024Q3")
    assert (medicaid.program, medicaid.loaded_program, medicaid.fallback) == ("medicaid", "medicare", True)
    assert "Medicare fallback" in medicaid.vintage and medicaid.quarter == "2024Q3"
    assert medicaid.ptp is medicare.ptp and medicaid.mue is medicare.mue
    [issue] = ptp_issues([line("A", "97530", 2), line("B", "97750")], modifier_on_either_column=False,
                         program="medicaid")
    assert issue.rule == "ncci-ptp" and issue.source.startswith(FALLBACK)
    [issue] = mue_issues([line("A", "97530", 7)], program="medicaid")
    assert FALLBACK in issue.source
    [issue] = aoc_issues([line("A", "97130")], program="medicaid")
    assert FALLBACK in issue.source
    [issue] = ptp_issues([line("A", "97530", 2), line("B", "97750")], modifier_on_either_column=False)
    assert "not loaded" not in issue.source and issue.source.startswith("CMS Medicare NCCI practitioner PTP")


def test_unknown_program_is_a_config_error():
    with pytest.raises(ConfigError, match="medicare, medicaid"):
        ncci_tables("tricare")


def _mappings_with(tmp_path, monkeypatch, sources: str) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(config.mappings_dir(), root)
    for f in FIXTURES.glob("fixture_*"):
        shutil.copy(f, root / "ncci" / f.name)
    (root / "ncci" / "sources.yaml").write_text(sources)
    monkeypatch.setenv("OTEDI_MAPPINGS", str(root))
    return root


MEDICARE_SECTION = """medicare:
  source: "CMS NCCI for Medicare (shipped subset)"
  vintage: "2024Q3"
  quarter_start: 2024-07-01
  ptp: [ptp_practitioner_ot.csv]
  mue: [mue_practitioner_ot.csv]
  aoc: [aoc_ot.csv]
"""


def test_medicaid_files_dropped_in_are_loaded_for_medicaid_only(tmp_path, monkeypatch):
    _mappings_with(tmp_path, monkeypatch, MEDICARE_SECTION + """medicaid:
  source: "fixture in the CMS Medicaid layout"
  vintage: "2026Q1 fixture"
  quarter_start: 2026-01-01
  ptp: [fixture_medicaid_ptp_practitioner.txt]
  mue: [fixture_medicaid_mue_practitioner.csv]
  aoc: [aoc_ot.csv]
""")
    medicaid = ncci_tables("medicaid")
    assert (medicaid.fallback, medicaid.quarter, medicaid.vintage) == (False, "2026Q1", "2026Q1 fixture")
    assert medicaid.ptp_edit("97530", "97750", DOS).modifier_indicator == "0"
    assert ncci_tables().ptp_edit("97530", "97750", DOS).modifier_indicator == "1"  # Medicare unchanged
    [issue] = ptp_issues([line("A", "97530", 2), line("B", "97750", 1, ("GO", "59"))],
                         modifier_on_either_column=False, program="medicaid")
    assert "modifier indicator 0" in issue.message
    assert issue.source.startswith("CMS Medicaid NCCI practitioner PTP edits (2026Q1 fixture")
    # no MUE Adjudication Indicator column: a line edit, and the issue says why
    edit = medicaid.mue["97530"]
    assert (edit.value, edit.adjudication_indicator, edit.indicator_in_file) == (3, 1, False)
    assert mue_issues([line("A", "97530", 3), line("B", "97530", 3)], program="medicaid") == []
    [issue] = mue_issues([line("A", "97530", 4)], program="medicaid")
    assert "4 units on one line exceed the MUE of 3" in issue.message
    assert "no adjudication indicator in the file: applied per line" in issue.message
    assert ncci_currency_issue(DOS, "medicaid") is None


def test_reads_medicaid_mue_without_adjudication_indicator():
    assert [(e.code, e.value, e.adjudication_indicator, e.indicator_in_file)
            for e in read_mue(FIXTURES / "fixture_medicaid_mue_practitioner.csv")] == [
        ("97530", 3, 1, False), ("97161", 1, 1, False)]
    assert all(e.indicator_in_file for e in read_mue(config.mappings_dir() / "ncci" / "mue_practitioner_ot.csv"))


def test_single_set_sources_yaml_of_earlier_versions_is_the_medicare_set(tmp_path, monkeypatch):
    _mappings_with(tmp_path, monkeypatch, 'source: "old layout"\nvintage: "2024Q3"\n'
                   "ptp: [ptp_practitioner_ot.csv]\nmue: [mue_practitioner_ot.csv]\naoc: [aoc_ot.csv]\n")
    tables = ncci_tables()
    assert tables.quarter_start == date(2024, 7, 1) and tables.mue["97530"].value == 6  # quarter from the vintage
    with pytest.raises(ConfigError, match="no 'medicaid' section"):
        ncci_tables("medicaid")


def test_fallback_must_name_another_loaded_program(tmp_path, monkeypatch):
    _mappings_with(tmp_path, monkeypatch, MEDICARE_SECTION + "medicaid:\n  fallback: medicaid\n")
    with pytest.raises(ConfigError, match="fallback"):
        ncci_tables("medicaid")


# --- staleness -------------------------------------------------------------------------------------

def test_currency_warning_when_the_date_of_service_is_in_a_later_quarter():
    assert ncci_currency_issue(date(2024, 7, 1)) is None
    assert ncci_currency_issue(date(2024, 9, 30)) is None
    assert ncci_currency_issue(date(2024, 3, 1)) is None  # older dates: the edits then are in the file's history
    issue = ncci_currency_issue(date(2024, 10, 1))
    assert (issue.severity, issue.rule, issue.value) == (Severity.WARNING, "ncci-vintage", "2024Q3")
    assert "2024Q4" in issue.message
    issue = ncci_currency_issue(DOS, charge_id="C1")
    assert issue.charge_id == "C1"
    assert "loaded are for 2024Q3" in issue.message and "2026-03-02 is in 2026Q1" in issue.message
    assert "drop in the current CMS Medicare NCCI files" in issue.message
    assert "mappings/ncci/README.md" in issue.message
    issue = ncci_currency_issue(DOS, "medicaid")
    assert "current CMS Medicaid NCCI files" in issue.message and issue.source.startswith(FALLBACK)


def test_currency_follows_the_quarter_start_of_dropped_in_files(tmp_path, monkeypatch):
    _mappings_with(tmp_path, monkeypatch, MEDICARE_SECTION.replace("2024-07-01", "2026-01-01")
                   + "medicaid:\n  fallback: medicare\n")
    assert ncci_currency_issue(DOS) is None and ncci_currency_issue(DOS, "medicaid") is None
    assert "2026Q1" in ncci_currency_issue(date(2026, 4, 1)).message


# --- PT and SLP codes (CMS practitioner files effective 2024-07-01) --------------------------------

def test_pt_evaluations_with_ot_evaluations_no_longer_edit():
    # 97161-97163 / 97165-97167: indicator 1, deleted 2017-06-30
    assert ncci_tables().ptp_edit("97161", "97165", date(2017, 6, 29)).modifier_indicator == "1"
    for pt in ("97161", "97162", "97163"):
        for ot in ("97165", "97166", "97167", "97168"):
            assert ncci_tables().ptp_edit(pt, ot, DOS) is None
    assert ptp_issues([line("A", "97163"), line("B", "97167")], modifier_on_either_column=True) == []


def test_pt_evaluation_edits():
    [issue] = ptp_issues([line("A", "97162", 1, ("GP",)), line("B", "97750", 1, ("GP", "59"))],
                         modifier_on_either_column=True)
    assert issue.value == "97162/97750" and "modifier indicator 0" in issue.message
    [issue] = ptp_issues([line("A", "97163", 1, ("GP",)), line("B", "97161", 1, ("GP",))],
                         modifier_on_either_column=True)
    assert issue.value == "97163/97161"
    # PT re-evaluation with 97110/97530: withdrawn (indicator 9); with 97535: active, modifier allowed
    assert ptp_issues([line("A", "97110", 2, ("GP",)), line("B", "97164", 1, ("GP",))],
                      modifier_on_either_column=True) == []
    [issue] = ptp_issues([line("A", "97535", 2, ("GP",)), line("B", "97164", 1, ("GP",))],
                         modifier_on_either_column=True)
    assert issue.value == "97535/97164" and "modifier indicator 1" in issue.message


def test_slp_treatment_with_therapy_codes():
    [issue] = ptp_issues([line("A", "92507", 1, ("GN",)), line("B", "97530", 2, ("GN",))],
                         modifier_on_either_column=False)
    assert issue.value == "92507/97530" and issue.charge_id == "B" and "modifier indicator 1" in issue.message
    assert ptp_issues([line("A", "92507", 1, ("GN",)), line("B", "97530", 2, ("GN", "XU"))],
                      modifier_on_either_column=False) == []
    [issue] = ptp_issues([line("A", "92523", 1, ("GN",)), line("B", "92522", 1, ("GN",))],
                         modifier_on_either_column=True)
    assert "modifier indicator 0" in issue.message


def test_pt_slp_mue_and_add_on_codes():
    tables = ncci_tables()
    assert {c: (tables.mue[c].value, tables.mue[c].adjudication_indicator)
            for c in ("97161", "97164", "92507", "92526", "97113", "97116", "97124", "97546")} == {
        "97161": (1, 2), "97164": (1, 2), "92507": (1, 3), "92526": (1, 2), "97113": (6, 3),
        "97116": (4, 3), "97124": (4, 3), "97546": (2, 3)}
    [issue] = mue_issues([line("A", "92507", 2, ("GN",))])
    assert "MUE of 1" in issue.message
    [issue] = aoc_issues([line("A", "97546")])
    assert "needs its primary code 97545" in issue.message
    assert aoc_issues([line("A", "98980"), line("B", "98981")]) == []
    assert len(aoc_issues([line("A", "98981")])) == 1


# --- same rendering provider ------------------------------------------------------------------------

def test_ptp_compares_the_billed_rendering_provider():
    supervisor = Rendering("1234567893", "SMITH", "ANN", "225X00000X")
    ota = replace(line("B", "97750", npi="1111111112"), rendering=supervisor)
    # the assistant's line is billed under the supervising therapist: same rendering provider
    [issue] = ptp_issues([line("A", "97530", 2), ota], modifier_on_either_column=True)
    assert issue.charge_id == "B"
    # a line object carrying rendering_npi (2310B provider) is compared by it
    a, b = line("A", "97530", 2), line("B", "97750")
    billed_apart = SimpleNamespace(charge=b.charge, units=b.units, modifiers=b.modifiers, cpt=b.cpt,
                                   rendering_npi="1987654328")
    assert ptp_issues([a, billed_apart], modifier_on_either_column=True) == []
    billed_same = SimpleNamespace(charge=replace(b.charge, rendering_npi="1111111112"), units=1,
                                  modifiers=b.modifiers, cpt=b.cpt, rendering_npi="1234567893")
    assert len(ptp_issues([a, billed_same], modifier_on_either_column=True)) == 1
