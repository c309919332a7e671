"""837P builder: claims built in code, written, checked segment by segment and
validated by the pyx12 gate (zero errors expected)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from otedi.charges.record import Charge
from otedi.claims.model import Claim, ClaimLine
from otedi.coding.result import CodedLine
from otedi.config import Clearinghouse, Practice
from otedi.errors import X12Error
from otedi.x12.envelope import ControlNumbers
from otedi.x12.segments import Delimiters, SegmentWriter, format_segment
from otedi.x12.validate import validate_file
from otedi.x12.x837p import BatchStats, amount, write_837p, x12_text

PRACTICE = Practice(
    practice_id="BRIGHTHANDS",
    name="Bright Hands Occupational Therapy PLLC",
    npi="1234567893",
    ein="73-1234567",
    taxonomy="225X00000X",
    address1="100 Main Street",
    city="Columbus",
    state="OH",
    zip="43215-1234",
    contact_name="Billing Office",
    contact_phone="(614) 555-0100",
    time_zone="America/New_York",
    clearinghouse="DEMOCH",
    submitter_id="BRIGHT01",
)
CLEARINGHOUSE = Clearinghouse(
    clearinghouse_id="DEMOCH",
    name="OTEDI DEMO CLEARINGHOUSE",
    isa_receiver_qualifier="ZZ",
    isa_receiver_id="DEMOCH",
    gs_receiver_code="DEMOCH",
    receiver_name="OTEDI DEMO CLEARINGHOUSE",
    receiver_id="DEMOCH",
)
CONTROL = ControlNumbers(interchange=4711, group=815, transaction=42)
CREATED = datetime(2026, 3, 2, 21, 5)


def make_charge(n: int = 1, **overrides) -> Charge:
    values = dict(
        charge_id=f"CH{n:05d}",
        practice_id="BRIGHTHANDS",
        service_date=date(2026, 2, 10),
        patient_id=f"P{n:04d}",
        patient_last_name="Rivera",
        patient_first_name="Ana",
        patient_dob=date(1958, 4, 12),
        patient_sex="F",
        patient_address1="12 Elm St Apt #4",
        patient_city="Columbus",
        patient_state="OH",
        patient_zip="43215",
        payer_id="SX123",
        payer_name="Buckeye Health Plan",
        claim_filing_code="CI",
        member_id="XYZ123456789",
        rendering_npi="1497758544",
        rendering_last_name="Okafor",
        rendering_first_name="Grace",
        rendering_role="OT",
        referring_npi="1003000126",
        referring_last_name="Lindqvist",
        referring_first_name="Erik",
        place_of_service="11",
        cpt="97530",
        charge_amount=Decimal("100.00"),
        dx_codes=("M25.511",),
        group_number="GRP7781",
    )
    values.update(overrides)
    return Charge(**values)


def make_line(number: int, charge: Charge, *, units: int = 1, modifiers=("GO",), amount_: str = "100.00",
              pointers=(1,)) -> ClaimLine:
    coded = CodedLine(charge=charge, units=units, modifiers=tuple(modifiers), charge_amount=Decimal(amount_))
    return ClaimLine(number=number, coded=coded, dx_pointers=tuple(pointers), line_control_number=f"{charge.charge_id}L")


def make_claim(claim_id: str = "BH0001", *, lines=None, diagnoses=("M25511",), **header) -> Claim:
    charge = make_charge(**header)
    if lines is None:
        lines = (
            make_line(1, replace(charge, charge_id="CH1A", cpt="97530"), units=2, amount_="140.00"),
            make_line(2, replace(charge, charge_id="CH1B", cpt="97110"), units=1, amount_="35.50"),
        )
    return Claim(claim_id=claim_id, header=charge, lines=tuple(lines), diagnoses=tuple(diagnoses))


def write(claims, control: ControlNumbers = CONTROL) -> tuple[str, BatchStats]:
    buffer = io.StringIO()
    stats = write_837p(claims, PRACTICE, CLEARINGHOUSE, control, buffer, created=CREATED)
    return buffer.getvalue(), stats


def segments(text: str) -> list[list[str]]:
    return [s.split("*") for s in text.split("~\n") if s]


def find(segs: list[list[str]], segment_id: str, *qualifier: str) -> list[list[str]]:
    return [s for s in segs if s[0] == segment_id and s[1 : 1 + len(qualifier)] == list(qualifier)]


def assert_valid(text: str, tmp_path: Path) -> None:
    path = tmp_path / "claims.837"
    path.write_text(text, encoding="ascii")
    report = validate_file(path)
    assert report.errors == []
    assert report.ok


# --- whole files validated by pyx12 -------------------------------------------------


def _mixed_batch() -> list[Claim]:
    """Every feature the builder supports, spread over five claims."""
    self_claim = make_claim("BH0001")
    dependent = make_claim(
        "BH0002",
        relationship="19",
        patient_first_name="Leo",
        patient_dob=date(2016, 9, 1),
        patient_sex="M",
        subscriber_last_name="Rivera",
        subscriber_first_name="Marco",
        subscriber_dob=date(1984, 1, 30),
        subscriber_sex="M",
        group_number=None,
    )
    twelve_dx = ("M25511", "M6281", "R2689", "G8929", "S42201A", "Z9181", "M79641", "M6250",
                 "R29898", "M25611", "M25612", "Z7409")
    base = make_charge(3, prior_auth_number="PA-2026-0042", initial_treatment_date=date(2026, 1, 5))
    wide = Claim(
        claim_id="BH0003",
        header=base,
        lines=(
            make_line(1, replace(base, charge_id="C3A"), modifiers=("CO", "GO", "KX", "59"), pointers=(1, 2, 3, 4)),
            make_line(2, replace(base, charge_id="C3B", cpt="97535"), modifiers=("GO",), pointers=(5, 6, 7, 8)),
            make_line(3, replace(base, charge_id="C3C", cpt="97140", place_of_service="12"), pointers=(9, 10, 11, 12),
                      amount_="35.07"),
        ),
        diagnoses=twelve_dx,
    )
    replacement = replace(make_claim("BH0004"), frequency_code="7", payer_claim_number="2026040100123")
    assistant = make_claim("BH0005", rendering_role="OTA", referring_npi="", claim_filing_code="MB",
                           payer_sequence="S", msp_type="12")
    return [self_claim, dependent, wide, replacement, assistant]


def test_mixed_batch_is_valid_for_pyx12(tmp_path):
    text, stats = write(_mixed_batch())
    assert_valid(text, tmp_path)
    assert stats.claims == 5
    assert stats.lines == 11
    assert stats.total_charge == Decimal("175.50") * 4 + Decimal("235.07")
    assert stats.segments == len(segments(text))


def test_single_self_subscriber_claim_is_valid(tmp_path):
    text, _ = write([make_claim()])
    assert_valid(text, tmp_path)


def test_validator_fixture_is_what_the_builder_writes():
    # tests/test_x12_validate.py corrupts this file; regenerate it from _mixed_batch() when the layout changes
    fixture = Path(__file__).parent / "fixtures" / "x12" / "otedi_837p_mixed.837"
    assert write(_mixed_batch())[0] == fixture.read_text(encoding="ascii")


# --- structure, with expected values ------------------------------------------------------


def test_self_subscriber_claim_layout():
    text, stats = write([make_claim()])
    assert text.splitlines() == [
        "ISA*00*          *00*          *ZZ*BRIGHT01       *ZZ*DEMOCH         *260302*2105*^*00501*000004711*0*T*:~",
        "GS*HC*BRIGHT01*DEMOCH*20260302*2105*815*X*005010X222A1~",
        "ST*837*0042*005010X222A1~",
        "BHT*0019*00*000004711*20260302*2105*CH~",
        "NM1*41*2*BRIGHT HANDS OCCUPATIONAL THERAPY PLLC*****46*BRIGHT01~",
        "PER*IC*BILLING OFFICE*TE*6145550100~",
        "NM1*40*2*OTEDI DEMO CLEARINGHOUSE*****46*DEMOCH~",
        "HL*1**20*1~",
        "PRV*BI*PXC*225X00000X~",
        "NM1*85*2*BRIGHT HANDS OCCUPATIONAL THERAPY PLLC*****XX*1234567893~",
        "N3*100 MAIN STREET~",
        "N4*COLUMBUS*OH*432151234~",
        "REF*EI*731234567~",
        "HL*2*1*22*0~",
        "SBR*P*18*GRP7781******CI~",
        "NM1*IL*1*RIVERA*ANA****MI*XYZ123456789~",
        "N3*12 ELM ST APT 4~",
        "N4*COLUMBUS*OH*43215~",
        "DMG*D8*19580412*F~",
        "NM1*PR*2*BUCKEYE HEALTH PLAN*****PI*SX123~",
        "CLM*BH0001*175.5***11:B:1*Y*A*Y*Y~",
        "HI*ABK:M25511~",
        "NM1*DN*1*LINDQVIST*ERIK****XX*1003000126~",
        "NM1*82*1*OKAFOR*GRACE****XX*1497758544~",
        "PRV*PE*PXC*225X00000X~",
        "LX*1~",
        "SV1*HC:97530:GO*140*UN*2***1~",
        "DTP*472*D8*20260210~",
        "REF*6R*CH1AL~",
        "LX*2~",
        "SV1*HC:97110:GO*35.5*UN*1***1~",
        "DTP*472*D8*20260210~",
        "REF*6R*CH1BL~",
        "SE*32*0042~",
        "GE*1*815~",
        "IEA*1*000004711~",
    ]
    assert stats == BatchStats(segments=36, transaction_segments=32, claims=1, lines=2,
                               total_charge=Decimal("175.50"), envelope=stats.envelope)
    assert (stats.envelope.sender_id, stats.envelope.receiver_id) == (PRACTICE.submitter_id, CLEARINGHOUSE.isa_receiver_id)


def test_isa_is_106_characters_and_control_numbers_match():
    control = ControlNumbers(interchange=123456789, group=98765, transaction=123)
    text, _ = write([make_claim()], control=control)
    first_line = text.split("\n", 1)[0]
    assert len(first_line) == 106  # terminator included, newline excluded
    segs = segments(text)
    by_id = {s[0]: s for s in segs}
    assert by_id["ISA"][13] == "123456789"
    assert by_id["GS"][6] == "98765"
    assert by_id["ST"][2] == "0123"
    assert by_id["SE"][2] == "0123"
    assert by_id["GE"][2] == "98765"
    assert by_id["IEA"][2] == "123456789"
    assert by_id["ISA"][11] == "^" and by_id["ISA"][16] == ":"
    assert by_id["ISA"][14] == "0" and by_id["ISA"][15] == "T"


def test_production_usage_indicator():
    out = io.StringIO()
    write_837p([make_claim()], PRACTICE, replace(CLEARINGHOUSE, usage_indicator="P"), CONTROL, out, created=CREATED)
    assert out.getvalue().split("~", 1)[0].split("*")[15] == "P"


def test_se_count_equals_segments_from_st_to_se():
    text, stats = write(_mixed_batch())
    segs = segments(text)
    st = next(i for i, s in enumerate(segs) if s[0] == "ST")
    se = next(i for i, s in enumerate(segs) if s[0] == "SE")
    assert int(segs[se][1]) == se - st + 1 == stats.transaction_segments


def test_clm02_equals_sum_of_sv102_for_every_claim():
    text, _ = write(_mixed_batch())
    totals: dict[str, Decimal] = {}
    claim = None
    for s in segments(text):
        if s[0] == "CLM":
            claim = s[1]
            totals[claim] = -Decimal(s[2])
        elif s[0] == "SV1":
            totals[claim] += Decimal(s[2])
    assert totals == dict.fromkeys(["BH0001", "BH0002", "BH0003", "BH0004", "BH0005"], Decimal("0"))
    assert [s[2] for s in find(segments(text), "CLM")] == ["175.5", "175.5", "235.07", "175.5", "175.5"]


def test_hl_numbering_and_parents():
    text, _ = write(_mixed_batch())
    hls = [s[1:] for s in find(segments(text), "HL")]
    assert hls == [
        ["1", "", "20", "1"],
        ["2", "1", "22", "0"],  # BH0001 self
        ["3", "1", "22", "1"],  # BH0002 subscriber with a dependent
        ["4", "3", "23", "0"],  # BH0002 patient
        ["5", "1", "22", "0"],
        ["6", "1", "22", "0"],
        ["7", "1", "22", "0"],
    ]


def test_patient_not_subscriber_uses_2000c():
    text, _ = write([_mixed_batch()[1]])
    segs = segments(text)
    sbr = find(segs, "SBR")[0]
    assert sbr == ["SBR", "P", "", "", "", "", "", "", "", "CI"]  # no SBR02, no group number
    assert find(segs, "NM1", "IL") == [["NM1", "IL", "1", "RIVERA", "MARCO", "", "", "", "MI", "XYZ123456789"]]
    assert find(segs, "PAT") == [["PAT", "19"]]
    assert find(segs, "NM1", "QC") == [["NM1", "QC", "1", "RIVERA", "LEO"]]
    # 2010BA N3/N4/DMG only when the patient is the subscriber (X12 RFI 2281): here they are the patient's, in 2010CA
    assert find(segs, "DMG") == [["DMG", "D8", "20160901", "M"]]
    assert find(segs, "N3")[1:] == [["N3", "12 ELM ST APT 4"]]
    ids = [s[0] for s in segs]
    assert ids[ids.index("PAT"):ids.index("CLM")] == ["PAT", "NM1", "N3", "N4", "DMG"]


def test_twelve_diagnoses_four_modifiers_prior_auth_and_initial_treatment():
    text, _ = write([_mixed_batch()[2]])
    segs = segments(text)
    assert find(segs, "HI") == [[
        "HI", "ABK:M25511", "ABF:M6281", "ABF:R2689", "ABF:G8929", "ABF:S42201A", "ABF:Z9181",
        "ABF:M79641", "ABF:M6250", "ABF:R29898", "ABF:M25611", "ABF:M25612", "ABF:Z7409",
    ]]
    assert [s[1:] for s in find(segs, "SV1")] == [
        ["HC:97530:CO:GO:KX:59", "100", "UN", "1", "", "", "1:2:3:4"],
        ["HC:97535:GO", "100", "UN", "1", "", "", "5:6:7:8"],
        ["HC:97140:GO", "35.07", "UN", "1", "12", "", "9:10:11:12"],  # SV105 only when POS differs
    ]
    assert find(segs, "REF", "G1") == [["REF", "G1", "PA-2026-0042"]]
    assert find(segs, "DTP", "454") == [["DTP", "454", "D8", "20260105"]]


def test_replacement_claim_carries_ref_f8():
    text, _ = write([_mixed_batch()[3]])
    segs = segments(text)
    assert find(segs, "CLM")[0][5] == "11:B:7"
    assert find(segs, "REF", "F8") == [["REF", "F8", "2026040100123"]]


def test_assistant_rendering_taxonomy_and_no_referring():
    text, _ = write([_mixed_batch()[4]])
    segs = segments(text)
    assert find(segs, "PRV", "PE") == [["PRV", "PE", "PXC", "224Z00000X"]]
    assert find(segs, "NM1", "DN") == []
    assert find(segs, "SBR")[0][1] == "S" and find(segs, "SBR")[0][9] == "MB"
    assert find(segs, "SBR")[0][5] == "12"  # TR3 SBR05: Medicare not primary -> MSP insurance type (working aged)


def test_sbr05_only_on_medicare_secondary_claims():
    # TR3 2000B SBR05: "Required when the destination payer is Medicare and Medicare is not the primary
    # payer (SBR01 does not equal P). If not required by this implementation guide, do not send."
    primary = segments(write([make_claim(claim_filing_code="MB", msp_type="12")])[0])
    assert find(primary, "SBR")[0][1:] == ["P", "18", "GRP7781", "", "", "", "", "", "MB"]
    commercial_secondary = segments(write([make_claim(payer_sequence="S", msp_type="12")])[0])
    assert find(commercial_secondary, "SBR")[0][5] == ""


def test_medicaid_dependent_claim_is_refused():
    # A Medicaid or Medicare beneficiary is always the subscriber: never a 2000C loop (TR3 2000C note).
    claim = make_claim(claim_filing_code="MC", relationship="19", subscriber_last_name="Rivera",
                       subscriber_first_name="Marco", subscriber_dob=date(1984, 1, 30), subscriber_sex="M")
    with pytest.raises(X12Error, match="always the subscriber"):
        write([claim])


def test_supervising_therapist_of_an_assistant_goes_in_2310b(tmp_path):
    from otedi.coding.assistants import billed_rendering

    charge = make_charge(rendering_role="OTA", rendering_npi="1497758544", rendering_last_name="Okafor",
                         supervising_npi="1003000126", supervising_last_name="Lindqvist",
                         supervising_first_name="Erik", claim_filing_code="MB")
    line = ClaimLine(1, CodedLine(charge, 1, ("CO", "GO"), Decimal("100.00"),
                                  rendering=billed_rendering(charge, assistants_render=False)), (1,), "L1")
    text, _ = write([Claim("BH0009", charge, (line,), ("M25511",))])
    assert_valid(text, tmp_path)
    segs = segments(text)
    assert find(segs, "NM1", "82") == [["NM1", "82", "1", "LINDQVIST", "ERIK", "", "", "", "XX", "1003000126"]]
    assert find(segs, "PRV", "PE") == [["PRV", "PE", "PXC", "225X00000X"]]  # the OT's taxonomy, not the OTA's
    assert find(segs, "SV1")[0][1] == "HC:97530:CO:GO"


def test_original_claim_has_no_f8_prior_auth_or_initial_treatment():
    segs = segments(write([make_claim()])[0])
    assert find(segs, "REF", "F8") == find(segs, "REF", "G1") == find(segs, "DTP", "454") == []


# --- values and refusals ------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("100.00", "100"), ("35.50", "35.5"), ("35.07", "35.07"), ("0.00", "0"), ("1200", "1200"), ("0.10", "0.1"),
])
def test_amount_has_no_trailing_zeros(value, expected):
    assert amount(Decimal(value)) == expected


@pytest.mark.parametrize("value, expected", [
    ("José Núñez", "JOSE NUNEZ"), ("O'Brien-Smith", "O'BRIEN-SMITH"), ("12 Elm St *Apt* #4~", "12 ELM ST APT 4"),
    ("  a:b^c  ", "A B C"),
])
def test_names_are_cleaned_to_the_character_set(value, expected):
    assert x12_text(value) == expected


def test_segment_writer_composites_and_trailing_elements():
    d = Delimiters()
    assert format_segment("SV1", [("HC", "97530", None), "10", None, "", ("1", "")], d) == "SV1*HC:97530*10***1"
    assert format_segment("HL", ["1", None, "20", "1", None], d) == "HL*1**20*1"


@pytest.mark.parametrize("value", ["A*B", "A:B", "A^B", "A~B"])
def test_segment_writer_refuses_delimiters_without_echoing_the_value(value):
    writer = SegmentWriter(io.StringIO())
    writer.write("ST", "837", "0001")
    with pytest.raises(X12Error) as caught:
        writer.write("NM1", "IL", "1", value)
    assert caught.value.segment_number == 2
    assert "NM103" in str(caught.value) and value not in str(caught.value)


def test_identifier_with_a_delimiter_is_refused():
    with pytest.raises(X12Error, match="REF02"):
        write([make_claim(prior_auth_number="PA*1")])


@pytest.mark.parametrize("claim, message", [
    (replace(make_claim(), frequency_code="7"), "REF\\*F8"),
    (make_claim(diagnoses=()), "diagnoses"),
    (make_claim(claim_filing_code="MB", payer_sequence="S"), "SBR05"),
    (make_claim(relationship="01"), "2010BA subscriber last name"),
    (make_claim(practice_id="KIDSTHRIVE"), "practice"),
    (make_claim(lines=(make_line(1, make_charge(), pointers=(2,)),)), "SV107"),
    (make_claim(lines=(make_line(1, make_charge(), modifiers=("GO", "KX", "59", "CO", "XU")),)), "modifiers"),
    (make_claim(lines=(make_line(2, make_charge()),)), "LX01"),
])
def test_claims_the_guide_cannot_express_are_refused(claim, message):
    with pytest.raises(X12Error, match=message) as caught:
        write([claim])
    assert "RIVERA" not in str(caught.value).upper()  # no PHI in messages
    assert claim.claim_id in str(caught.value)


def test_control_numbers_out_of_range_are_refused():
    with pytest.raises(X12Error, match="interchange"):
        ControlNumbers(interchange=1_000_000_000, group=1, transaction=1)
    with pytest.raises(X12Error, match="transaction"):
        ControlNumbers(interchange=1, group=1, transaction=0)


def test_submitter_id_longer_than_isa06_is_refused():
    with pytest.raises(X12Error, match="ISA06"):
        write_837p([make_claim()], replace(PRACTICE, submitter_id="X" * 16), CLEARINGHOUSE, CONTROL,
                   io.StringIO(), created=CREATED)


def test_pay_to_address_goes_in_2010ab_after_the_street_address(tmp_path):
    # TR3 2010AA N301: "The Billing Provider Address must be a street address. Post Office Box or Lock Box
    # addresses are to be sent in the Pay-To Address Loop (Loop ID-2010AB), if necessary."
    practice = replace(PRACTICE, pay_to_address1="PO BOX 4400", pay_to_city="Columbus", pay_to_state="OH",
                       pay_to_zip="432164400")
    buffer = io.StringIO()
    write_837p([make_claim()], practice, CLEARINGHOUSE, CONTROL, buffer, created=CREATED)
    assert_valid(buffer.getvalue(), tmp_path)
    segs = segments(buffer.getvalue())
    at = segs.index(["NM1", "87", "2"])
    assert segs[at - 4][:2] == ["NM1", "85"] and segs[at + 1:at + 3] == [["N3", "PO BOX 4400"],
                                                                         ["N4", "COLUMBUS", "OH", "432164400"]]
    assert ["NM1", "87", "2"] not in segments(write([make_claim()])[0])  # no pay-to address, no 2010AB
