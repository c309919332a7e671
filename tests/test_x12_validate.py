"""The pyx12 gate on fixture files (see fixtures/x12/SOURCES.md): a valid
837P written by otedi, corrupted copies of it, public 837P/835/999 samples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otedi.x12.validate import ValidationReport, X12Problem, quarantine, validate_file

FIXTURES = Path(__file__).parent / "fixtures" / "x12"
VALID_837P = FIXTURES / "otedi_837p_mixed.837"  # 5 claims, 125 segments, SE01 = 121


def corrupted(tmp_path: Path, pattern: str, replacement: str, *, count: int = 1) -> Path:
    """A copy of the valid 837P with `pattern` (a regex over whole lines) replaced `count` times."""
    text, n = re.subn(pattern, replacement, VALID_837P.read_text(), count=count, flags=re.M)
    assert n == count, f"{pattern!r} matched {n} times"
    path = tmp_path / "corrupted.837"
    path.write_text(text)
    return path


def codes(report: ValidationReport) -> list[tuple]:
    return [(p.segment_number, p.segment_id, p.loop_id, p.element, p.code) for p in report.errors]


def test_valid_837p_has_no_errors():
    report = validate_file(VALID_837P)
    assert report.ok
    assert report.errors == []
    assert report.segments == 125
    assert report.to_text() == "otedi_837p_mixed.837: valid (125 segments read by pyx12)\n"


def test_missing_required_loop_is_placed_and_named(tmp_path):
    # drop the first claim's 2010BB payer name; SE01 now overstates the count by one
    report = validate_file(corrupted(tmp_path, r"^NM1\*PR\*.*\n", ""))
    assert not report.ok
    assert codes(report) == [(20, "CLM", "2300", None, "3"), (123 - 1, "SE", None, None, "4")]
    assert report.errors[0].message == 'required loop 2010BB ("Payer Name") is missing before this segment'
    assert report.errors[1].message == "SE01 segment count is wrong: SE count of 121 for SE02=0042 is wrong. I count 120"


def test_wrong_se_count(tmp_path):
    report = validate_file(corrupted(tmp_path, r"^SE\*121\*", "SE*120*"))
    assert codes(report) == [(123, "SE", None, None, "4")]


def test_invalid_code_names_the_element_without_quoting_the_value(tmp_path):
    report = validate_file(corrupted(tmp_path, r"^(CLM\*BH0001\*175.5\*\*\*11:B:1)\*Y\*", r"\1*Q*"))
    assert codes(report) == [(21, "CLM", "2300", "CLM06", "7")]
    problem = report.errors[0]
    assert problem.message == 'invalid code value in "Provider or Supplier Signature Indicator"'
    assert problem.detail == "(Q) is not a valid code for Provider or Supplier Signature Indicator (CLM06)"
    assert report.to_text().splitlines()[1] == (
        '  segment 21, CLM, loop 2300, CLM06: invalid code value in "Provider or Supplier Signature Indicator"'
        " [pyx12 7]"
    )


def test_phi_stays_out_of_messages_unless_details_are_asked_for(tmp_path):
    long_name = "RIVERA" + "X" * 60
    report = validate_file(corrupted(tmp_path, r"^NM1\*IL\*1\*RIVERA\*ANA", f"NM1*IL*1*{long_name}*ANA"))
    assert codes(report) == [(16, "NM1", "2010BA", "NM103", "5")]
    assert long_name not in report.to_text()
    assert long_name in report.to_text(with_details=True)


def test_unknown_segment_is_reported_in_its_loop(tmp_path):
    report = validate_file(corrupted(tmp_path, r"^DTP\*472\*D8\*20260210", "XYZ*SECRET"))
    assert codes(report) == [(28, "XYZ", "2400", None, "1"), (29, "REF", "2400", None, "3")]
    assert "SECRET" not in report.to_text()
    assert report.errors[1].message == 'required segment DTP ("Date - Service Date") is missing before this segment'


def test_hl_parent_and_lx_numbering(tmp_path):
    text = VALID_837P.read_text().replace("HL*4*3*23*0~", "HL*4*2*23*0~").replace("LX*2~", "LX*5~", 1)
    path = tmp_path / "numbering.837"
    path.write_text(text)
    report = validate_file(path)
    assert (30, "LX", "2400", None, "LX") in codes(report)
    assert (38, "HL", "2000C", None, "HL2") in codes(report)


def test_envelope_control_numbers_and_counts(tmp_path):
    text = VALID_837P.read_text().replace("GE*1*815~", "GE*1*816~").replace("IEA*1*", "IEA*2*")
    path = tmp_path / "envelope.837"
    path.write_text(text)
    assert codes(validate_file(path)) == [(124, "GE", None, None, "4"), (125, "IEA", None, None, "021")]


def test_byte_order_mark_is_stripped_and_noted(tmp_path):
    path = tmp_path / "bom.837"
    path.write_bytes(b"\xef\xbb\xbf" + VALID_837P.read_bytes())
    report = validate_file(path)
    assert report.ok and report.bom_stripped
    assert "byte-order mark was stripped" in report.to_text()


def test_non_ascii_character_is_an_element_error(tmp_path):
    report = validate_file(corrupted(tmp_path, r"^N3\*12 ELM ST APT 4", "N3*12 ÉLM ST"))
    assert codes(report) == [(17, "N3", "2010BA", "N301", "6")]


def test_not_an_x12_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not EDI\n")
    report = validate_file(path)
    assert not report.ok
    assert codes(report) == [(1, "ISA", None, None, "NOT_X12")]


def test_x222a2_sample_is_reported_as_an_unmapped_gs08():
    report = validate_file(FIXTURES / "lfh_demo.example1.837")
    assert codes(report) == [(2, "GS", None, "GS08", "MAP_NOT_FOUND")]
    assert "GS08 005010X222A2" in report.errors[0].message
    assert "005010X222A1" in report.errors[0].message


def test_x222a2_sample_restamped_to_a1_is_valid(tmp_path):
    # patient is not the subscriber (2000C/PAT): the content is valid X222A1
    path = tmp_path / "example1_a1.837"
    path.write_text((FIXTURES / "lfh_demo.example1.837").read_text().replace("005010X222A2", "005010X222A1"))
    report = validate_file(path)
    assert report.ok, report.to_text()
    assert report.segments == 44


def test_835_without_st03_validates_without_the_999_crash():
    report = validate_file(FIXTURES / "pyx12_835_mult_loops.txt")
    assert report.ok
    assert report.segments == 35


def test_999_files():
    assert validate_file(FIXTURES / "imsweb_x12_999_rejected.txt").ok  # a valid 999 that rejects an 837I
    report = validate_file(FIXTURES / "imsweb_x12_999_accepted.txt")
    assert codes(report) == [(10, "IEA", None, None, "001")]
    assert report.errors[0].message == (
        "ISA13 and IEA02 control numbers differ: IEA id=000000001 does not match ISA id=000000286"
    )


def test_quarantine_moves_the_file_and_writes_the_errors_beside_it(tmp_path):
    path = corrupted(tmp_path, r"^SE\*121\*", "SE*120*")
    report = validate_file(path)
    first = quarantine(path, report, tmp_path / "quarantine")
    assert first == tmp_path / "quarantine" / "corrupted.837"
    assert not path.exists() and first.exists()
    assert (tmp_path / "quarantine" / "corrupted.837.errors.txt").read_text() == (
        "corrupted.837: INVALID, 1 error(s) (125 segments read by pyx12)\n"
        "  segment 123, SE: SE01 segment count is wrong: SE count of 120 for SE02=0042 is wrong. I count 121"
        " [pyx12 4]\n"
    )
    # a second file of the same name does not overwrite the first
    path = corrupted(tmp_path, r"^SE\*121\*", "SE*120*")
    second = quarantine(path, report, tmp_path / "quarantine")
    assert second.name == "corrupted.1.837"
    assert (tmp_path / "quarantine" / "corrupted.1.837.errors.txt").exists()


def test_problem_text_without_a_position():
    problem = X12Problem(None, None, None, None, "REJECTED", "pyx12 rejected the file without naming an error")
    assert problem.to_text() == "file: pyx12 rejected the file without naming an error [pyx12 REJECTED]"


@pytest.mark.parametrize("name", ["lfh_demo.example1.837", "pyx12_835_mult_loops.txt"])
def test_fixtures_are_byte_for_byte_copies_of_the_shared_samples(name):
    shared = Path(__file__).resolve().parents[2] / "shared" / "samples"
    matches = list(shared.glob(f"*/{name}"))
    if not matches:
        pytest.skip("shared samples not present")
    assert (FIXTURES / name).read_bytes() == matches[0].read_bytes()
