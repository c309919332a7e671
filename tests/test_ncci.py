import shutil
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import Workbook

from otedi import config
from otedi.coding.ncci import ncci_tables, read_mue, read_ptp, aoc_issues, mue_issues, ptp_issues
from otedi.coding.result import CodedLine
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
