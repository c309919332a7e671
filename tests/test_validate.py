"""Row validation: each rule rejects with the right column, value and row; good rows become Charges."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from otedi.charges.extract import ROW, read_extract
from otedi.charges.record import CANONICAL_COLUMNS, Charge
from otedi.charges.validate import PHI_COLUMNS, npi_is_valid, validate_rows
from otedi.issues import Severity

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "extracts"
TODAY = date(2026, 6, 30)

GOOD = {
    "charge_id": "C-1", "practice_id": "BRIGHTHANDS", "service_date": "2026-03-02",
    "patient_id": "P-77", "patient_last_name": "TESTPATIENT", "patient_first_name": "ALICE",
    "patient_dob": "1950-04-17", "patient_sex": "F", "patient_address1": "12 ELM ST", "patient_city": "AMHERST",
    "patient_state": "MA", "patient_zip": "01002-4411", "payer_id": "15202", "payer_name": "CGS MEDICARE PART B OHIO",
    "claim_filing_code": "MB", "payer_sequence": "", "member_id": "1EG4TE5MK73", "group_number": "",
    "relationship": "", "subscriber_last_name": "", "subscriber_first_name": "", "subscriber_dob": "",
    "subscriber_sex": "", "rendering_npi": "1945678906", "rendering_last_name": "OTLAST",
    "rendering_first_name": "OTFIRST", "rendering_role": "OT", "referring_npi": "1600000016",
    "referring_last_name": "DOCLAST", "referring_first_name": "DOCFIRST", "place_of_service": "11",
    "cpt": "97110", "modifiers": "GO KX:59", "minutes": "23", "units": "", "charge_amount": "130.00",
    "dx_codes": "M62.81|r27.8", "prior_auth_number": "", "initial_treatment_date": "2026-02-23",
    "plan_of_care_certified_through": "2026-05-23",
}
THIRTEEN_DX = "|".join(f"M62.8{i}" for i in range(10)) + "|R27.8|R26.89|Z47.89"
COMMERCIAL = {"payer_id": "87726", "payer_name": "UNITEDHEALTHCARE", "claim_filing_code": "CI"}
CHILD = {
    **COMMERCIAL, "relationship": "19", "subscriber_last_name": "TESTPARENT", "subscriber_first_name": "CAROL",
    "subscriber_dob": "1988-01-09", "subscriber_sex": "F", "patient_dob": "2019-08-30",
}


def frame_of(*rows: dict, first_row: int = 2) -> pd.DataFrame:
    frame = pd.DataFrame([{**GOOD, **r} for r in rows], columns=list(CANONICAL_COLUMNS), dtype="str")
    frame[ROW] = range(first_row, first_row + len(rows))
    return frame


def check(**changes):
    return validate_rows(frame_of(changes), file="/drop/charges.csv", today=TODAY)


def test_good_row_becomes_a_charge_with_typed_fields():
    charges, issues = check()
    assert issues == []
    (c,) = charges
    assert isinstance(c, Charge)
    assert c.charge_amount == Decimal("130.00") and isinstance(c.charge_amount, Decimal)
    assert (c.service_date, c.patient_dob) == (date(2026, 3, 2), date(1950, 4, 17))
    assert c.initial_treatment_date == date(2026, 2, 23)
    assert c.plan_of_care_certified_through == date(2026, 5, 23)
    assert c.dx_codes == ("M6281", "R278")
    assert c.modifiers == ("GO", "KX", "59")
    assert (c.minutes, c.units) == (23, None)
    assert (c.relationship, c.payer_sequence) == ("18", "P")  # defaults
    assert c.patient_zip == "010024411"
    assert (c.group_number, c.prior_auth_number, c.subscriber_dob) == (None, None, None)
    assert c.patient_is_subscriber


def test_canonical_fixture_file_validates_end_to_end():
    charges, issues = validate_rows(read_extract(FIXTURES / "canonical_small.csv"), file="canonical_small.csv",
                                    today=TODAY)
    # C-1003 is a Medicaid child charted as the parent's dependent: a Medicaid beneficiary has a member id
    # of their own and is always the subscriber (TR3 2000C note), so the row loads as self with a warning.
    assert [(i.severity, i.rule, i.charge_id, i.column, i.value) for i in issues] == [
        (Severity.WARNING, "patient-is-subscriber", "C-1003", "relationship", "19")]
    assert [c.charge_id for c in charges] == ["C-1001", "C-1002", "C-1003"]
    child = charges[2]
    assert (child.relationship, child.subscriber_dob, child.subscriber_sex) == ("18", None, None)
    assert (child.units, child.minutes, child.charge_amount) == (3, 38, Decimal("240.00"))
    assert child.initial_treatment_date is None
    assert charges[1].units == 1 and charges[1].minutes is None  # 97018 is untimed


@pytest.mark.parametrize(
    "changes, rule, column, value, reason",
    [
        ({"payer_id": ""}, "extract-required", "payer_id", "",
         "payer_id is empty; it is required on every charge line"),
        ({"service_date": "03/02/2026"}, "extract-date", "service_date", "03/02/2026",
         "service_date '03/02/2026' is not a valid date; write it as YYYY-MM-DD"),
        ({"service_date": "2026-02-30"}, "extract-date", "service_date", "2026-02-30",
         "service_date '2026-02-30' is not a valid date; write it as YYYY-MM-DD"),
        ({"service_date": "2026-07-01"}, "service-date-future", "service_date", "2026-07-01",
         "service_date 2026-07-01 is after today (2026-06-30); a service is billed after it is given"),
        ({"patient_dob": "2026-03-03"}, "extract-date", "patient_dob", None,
         "patient_dob is after service_date 2026-03-02; check the birth date"),
        ({"patient_dob": "1950-13-01"}, "extract-date", "patient_dob", None,
         "patient_dob is not a valid date; write it as YYYY-MM-DD"),
        ({"patient_dob": "1890-01-01"}, "extract-date", "patient_dob", None,
         "patient_dob is more than 120 years before service_date; check the birth date"),
        ({"initial_treatment_date": "2026-03-09"}, "extract-date", "initial_treatment_date", "2026-03-09",
         "initial_treatment_date 2026-03-09 is after service_date 2026-03-02; it is the first day of this episode"),
        ({"rendering_npi": "194567890"}, "npi-format", "rendering_npi", "194567890",
         "rendering_npi '194567890' is not an NPI: an NPI is exactly 10 digits"),
        ({"rendering_npi": "194567890\u00b2"}, "npi-format", "rendering_npi", "194567890\u00b2",  # '²' is a "digit"
         "rendering_npi '194567890\u00b2' is not an NPI: an NPI is exactly 10 digits"),
        ({"rendering_npi": "1945678907"}, "npi-luhn", "rendering_npi", "1945678907",
         "rendering_npi 1945678907 fails the NPI check digit, so it is mistyped; copy the NPI from the NPPES registry"),
        ({"referring_npi": "1600000017"}, "npi-luhn", "referring_npi", "1600000017",
         "referring_npi 1600000017 fails the NPI check digit"),
        ({"dx_codes": "M62.81|6281"}, "icd10-shape", "dx_codes", "M62.81|6281",
         "dx_codes '6281' is not an ICD-10-CM code (a letter, a digit, then 1 to 5 letters or digits, e.g. M62.81)"),
        ({"dx_codes": "M62.81, R27.8"}, "icd10-shape", "dx_codes", "M62.81, R27.8", "; separate codes with '|'"),
        ({"dx_codes": "M62.81123"}, "icd10-shape", "dx_codes", "M62.81123", "is not an ICD-10-CM code"),
        ({"dx_codes": THIRTEEN_DX}, "icd10-count", "dx_codes", THIRTEEN_DX,
         "dx_codes has 13 diagnosis codes; a claim carries at most 12: keep the 12 most relevant"),
        ({"dx_codes": " | "}, "extract-required", "dx_codes", "|",
         "dx_codes has no diagnosis code; at least one is required"),
        ({"cpt": "97999"}, "cpt-unknown", "cpt", "97999",
         "cpt 97999 is not in the OT code table (mappings/codes/ot_codes.csv)"),
        ({"cpt": "97003", "minutes": ""}, "cpt-deleted", "cpt", "97003",
         "cpt 97003 was deleted on 2017-01-01; bill 97165, 97166 or 97167 by evaluation complexity"),
        ({"cpt": "97004", "minutes": ""}, "cpt-deleted", "cpt", "97004",
         "cpt 97004 was deleted on 2017-01-01; bill 97168"),
        ({"cpt": "97127", "minutes": ""}, "cpt-deleted", "cpt", "97127",
         "cpt 97127 was deleted on 2020-01-01; bill 97129 with 97130 for each additional 15 minutes"),
        ({"cpt": "97550", "service_date": "2023-06-01", "initial_treatment_date": ""}, "cpt-not-yet-valid", "cpt",
         "97550", "cpt 97550 took effect on 2024-01-01, after service_date 2023-06-01"),
        ({"minutes": ""}, "minutes-required", "minutes", "",
         "minutes is empty; cpt 97110 is a timed code (15-minute units), so the treatment minutes are needed"),
        ({"minutes": "0"}, "minutes-invalid", "minutes", "0", "minutes '0' is not a whole number above 0"),
        ({"minutes": "22.5"}, "minutes-invalid", "minutes", "22.5", "minutes '22.5' is not a whole number above 0"),
        ({"units": "-1"}, "units-invalid", "units", "-1",
         "units '-1' is not a whole number above 0; leave it empty to compute units from minutes"),
        ({"charge_amount": "12.345"}, "charge-amount", "charge_amount", "12.345",
         "charge_amount '12.345' is not an amount above 0 with at most 2 decimal places"),
        ({"charge_amount": "0.00"}, "charge-amount", "charge_amount", "0.00", "is not an amount above 0"),
        ({"charge_amount": "$130.00"}, "charge-amount", "charge_amount", "$130.00", "write digits only, e.g. 130.00"),
        ({"patient_sex": "X"}, "sex-code", "patient_sex", "X", "patient_sex 'X' is not F, M or U"),
        ({"patient_state": "XX"}, "state-code", "patient_state", "XX",
         "patient_state 'XX' is not a US state or territory code (e.g. OH)"),
        ({"patient_zip": "0100"}, "zip-format", "patient_zip", None,
         "patient_zip is not a ZIP code (4 characters); write 5 digits or ZIP+4 (12345-6789)"),
        ({"place_of_service": "45"}, "pos-code", "place_of_service", "45",
         "place_of_service '45' is not a CMS place-of-service code (11 office, 12 home"),
        ({"relationship": "03"}, "relationship-code", "relationship", "03",
         "relationship '03' is not a relationship code: 18 self, 01 spouse, 19 child, G8 other"),
        ({"payer_sequence": "Q"}, "payer-sequence", "payer_sequence", "Q",
         "payer_sequence 'Q' is not P, S or T (primary, secondary, tertiary)"),
        ({"rendering_role": "PTX"}, "rendering-role", "rendering_role", "PTX",
         "rendering_role 'PTX' is not a rendering role: OT, OTA, PT, PTA, SLP or SLPA"),
        ({"modifiers": "GO:KX:59:XU:CO"}, "modifier-count", "modifiers", "GO:KX:59:XU:CO",
         "modifiers 'GO:KX:59:XU:CO' has 5 modifiers; a service line carries at most 4"),
        ({"modifiers": "GO-KX"}, "modifier-format", "modifiers", "GO-KX",
         "modifiers 'GO-KX': 'GO-KX' is not a modifier; a modifier is 2 letters or digits, separated by ':' or spaces"),
        ({"claim_filing_code": "XX"}, "filing-code", "claim_filing_code", "XX",
         "claim_filing_code 'XX' is not a claim filing code (SBR09: MB Medicare Part B"),
        ({"practice_id": "NOWHERE"}, "practice-unknown", "practice_id", "NOWHERE",
         "practice_id 'NOWHERE' is not configured in mappings/practices.yaml (configured: BRIGHTHANDS, HANDWORKS, "
         "KIDSTHRIVE)"),
    ],
)
def test_each_rule_rejects_with_column_value_and_reason(changes, rule, column, value, reason):
    charges, issues = check(**changes)
    assert charges == []
    assert [(i.rule, i.column, i.value) for i in issues] == [(rule, column, value)]
    (issue,) = issues
    assert issue.severity is Severity.REJECT
    assert (issue.row, issue.charge_id) == (2, "C-1")
    assert issue.message.startswith("charges.csv row 2 (charge_id C-1): ")
    assert reason in issue.message


def test_deleted_evaluation_message_reads_as_the_style_guide_example():
    frame = frame_of({"charge_id": "C-8812", "cpt": "97003", "minutes": ""}, first_row=14)
    _, (issue,) = validate_rows(frame, file="charges.csv", today=TODAY)
    assert issue.message == ("charges.csv row 14 (charge_id C-8812): cpt 97003 was deleted on 2017-01-01; "
                             "bill 97165, 97166 or 97167 by evaluation complexity")
    assert issue.source == "CY2017 PFS final rule: deleted 2017-01-01"
    # before the deletion the code was valid
    charges, issues = validate_rows(frame_of({"cpt": "97003", "minutes": "", "service_date": "2016-12-30",
                                              "initial_treatment_date": ""}), file="x.csv", today=TODAY)
    assert issues == [] and charges[0].cpt == "97003"


def test_lenient_forms_are_normalised():
    charges, issues = check(place_of_service="2", relationship="1", cpt="97110", patient_sex="f", patient_state="oh",
                            rendering_role="ota", modifiers="go  co", claim_filing_code="ci", dx_codes="m62.81|M62.81",
                            subscriber_last_name="TESTSPOUSE", subscriber_first_name="BOB",
                            subscriber_dob="1948-02-02", subscriber_sex="m")
    assert issues == []
    (c,) = charges
    assert (c.place_of_service, c.relationship, c.patient_sex, c.patient_state) == ("02", "01", "F", "OH")
    assert (c.rendering_role, c.modifiers, c.claim_filing_code) == ("OTA", ("GO", "CO"), "CI")
    assert c.dx_codes == ("M6281",)  # a repeated code is kept once
    assert (c.subscriber_last_name, c.subscriber_dob, c.subscriber_sex) == ("TESTSPOUSE", date(1948, 2, 2), "M")


def test_subscriber_fields_required_when_patient_is_not_the_subscriber():
    charges, issues = check(relationship="19", patient_dob="2019-08-30", **COMMERCIAL)
    assert charges == []
    assert [(i.rule, i.column, i.value) for i in issues] == [
        ("subscriber-required", c, None if c != "subscriber_sex" else "")
        for c in ("subscriber_last_name", "subscriber_first_name", "subscriber_dob", "subscriber_sex")
    ]
    assert issues[0].message == ("charges.csv row 2 (charge_id C-1): subscriber_last_name is empty; it is required "
                                 "when relationship is 19 (the patient is not the subscriber)")
    charges, issues = check(**CHILD)
    assert issues == []
    assert (charges[0].subscriber_first_name, charges[0].subscriber_dob) == ("CAROL", date(1988, 1, 9))


def test_subscriber_dob_is_checked_like_the_patients():
    _, issues = check(**{**CHILD, "subscriber_dob": "2027-01-01"})
    assert [(i.rule, i.column, i.value) for i in issues] == [("extract-date", "subscriber_dob", None)]
    assert issues[0].message.endswith("subscriber_dob is after service_date 2026-03-02; check the birth date")


def test_duplicate_charge_id_rejects_second_and_later_rows():
    frame = frame_of({"charge_id": "C-9"}, {"charge_id": "C-10"}, {"charge_id": "C-9"}, {"charge_id": "C-9"})
    charges, issues = validate_rows(frame, file="charges.csv", today=TODAY)
    assert [c.charge_id for c in charges] == ["C-9", "C-10"]
    assert [(i.rule, i.row, i.column, i.value) for i in issues] == [
        ("charge-id-duplicate", 4, "charge_id", "C-9"), ("charge-id-duplicate", 5, "charge_id", "C-9")]
    assert issues[0].message == (
        "charges.csv row 4 (charge_id C-9): charge_id C-9 already appears on row 2 of this file; each charge line "
        "needs its own charge_id, so this row is not billed")


def test_every_problem_of_a_row_is_reported_and_other_rows_proceed():
    frame = frame_of({}, {"charge_id": "C-2", "cpt": "97003", "rendering_npi": "123", "patient_sex": "", "minutes": ""},
                     {"charge_id": "C-3"})
    charges, issues = validate_rows(frame, file="charges.csv", today=TODAY)
    assert [c.charge_id for c in charges] == ["C-1", "C-3"]
    assert [(i.row, i.rule, i.column) for i in issues] == [
        (3, "extract-required", "patient_sex"), (3, "npi-format", "rendering_npi"), (3, "cpt-deleted", "cpt")]


def test_messages_never_carry_names_birth_dates_member_ids_or_addresses():
    bad = {"patient_dob": "17/04/1950", "subscriber_dob": "1988-02-31", "patient_zip": "ABCDE",
           **COMMERCIAL, "relationship": "01", "subscriber_last_name": "SECRETSPOUSE", "subscriber_first_name": "HIDDEN",
           "subscriber_sex": "M", "patient_last_name": "TESTPATIENT", "member_id": "1EG4TE5MK73", "cpt": "97003",
           "minutes": ""}
    _, issues = check(**bad)
    assert {i.column for i in issues} == {"patient_dob", "subscriber_dob", "patient_zip", "cpt"}
    text = " ".join(i.message + str(i.value) for i in issues)
    for secret in ("17/04/1950", "1988-02-31", "ABCDE", "SECRETSPOUSE", "HIDDEN", "TESTPATIENT", "ALICE",
                   "1EG4TE5MK73", "12 ELM ST", "AMHERST"):
        assert secret not in text
    assert all(i.value is None for i in issues if i.column != "cpt")


def test_rows_without_a_row_column_are_numbered_from_2():
    frame = frame_of({"charge_id": "C-1"}, {"charge_id": "C-2", "cpt": "97999"}).drop(columns=ROW)
    _, (issue,) = validate_rows(frame, file="x.csv", today=TODAY)
    assert (issue.row, issue.charge_id) == (3, "C-2")


def test_npi_check_digit():
    assert npi_is_valid("1234567893")  # the CMS worked example
    assert not npi_is_valid("1234567890")
    assert not npi_is_valid("123456789")
    assert not npi_is_valid("12345678a3")


def test_supervising_therapist_columns():
    charges, issues = check(rendering_role="OTA", supervising_npi="1497758544", supervising_last_name="SUPERVISOR",
                            supervising_first_name="OT")
    assert issues == [] and (charges[0].supervising_npi, charges[0].supervising_last_name) == ("1497758544",
                                                                                                "SUPERVISOR")
    _, issues = check(rendering_role="OTA", supervising_npi="1497758544")
    assert [(i.rule, i.column) for i in issues] == [("supervising-name", "supervising_last_name")]
    _, issues = check(rendering_role="OTA", supervising_npi="1945678906", supervising_last_name="SELF")
    assert [i.rule for i in issues] == ["supervising-self"]  # the rendering OTA's own NPI
    _, issues = check(supervising_npi="1497758544", supervising_last_name="X" * 61)
    assert [(i.rule, i.column) for i in issues] == [("field-length", "supervising_last_name")]


def test_medicare_secondary_row_needs_the_msp_type():
    _, issues = check(payer_sequence="S")
    assert [(i.rule, i.column) for i in issues] == [("msp-type-required", "msp_type")]
    assert "12 working aged" in issues[0].message
    charges, issues = check(payer_sequence="S", msp_type="12")
    assert issues == [] and charges[0].msp_type == "12"
    _, issues = check(payer_sequence="S", msp_type="99")
    assert [i.rule for i in issues] == ["msp-type"]


def test_plan_of_care_dates_are_read_and_checked():
    charges, issues = check(plan_of_care_start="2026-02-23", plan_of_care_signed_date="2026-02-25",
                            progress_report_date="2026-03-02")
    assert issues == [] and charges[0].plan_of_care_signed_date == date(2026, 2, 25)
    _, issues = check(plan_of_care_start="2026-06-01")  # after the certified-through date 2026-05-23
    assert [i.column for i in issues] == ["plan_of_care_certified_through"]
    _, issues = check(progress_report_date="2026-03-09")  # after the visit
    assert [i.column for i in issues] == ["progress_report_date"]


def test_medicare_dependent_loads_as_subscriber_with_a_warning():
    charges, issues = check(**{**CHILD, "payer_id": "15202", "payer_name": "CGS MEDICARE PART B OHIO",
                               "claim_filing_code": "MB"})
    assert [(i.severity, i.rule) for i in issues] == [(Severity.WARNING, "patient-is-subscriber")]
    assert charges[0].relationship == "18" and charges[0].subscriber_last_name is None
    assert "TESTPARENT" not in issues[0].message and "CAROL" not in issues[0].message


@pytest.mark.parametrize("changes, column, rule", [
    ({"member_id": "1EG4*TE5MK73"}, "member_id", "x12-characters"),  # the element separator
    ({"member_id": "1EG4~TE5"}, "member_id", "x12-characters"),  # the segment terminator
    ({"prior_auth_number": "PA:12"}, "prior_auth_number", "x12-characters"),  # the component separator
    ({"group_number": "GRÜPPE1"}, "group_number", "x12-characters"),
    ({"patient_last_name": "X" * 61}, "patient_last_name", "field-length"),  # NM103 holds 60
    ({"patient_address1": "1" * 56}, "patient_address1", "field-length"),  # N301 holds 55
    ({"patient_last_name": "李"}, "patient_last_name", "x12-characters"),  # nothing left once folded
    ({"member_id": "M" * 81}, "member_id", "field-length"),
])
def test_values_x12_cannot_carry_are_rejected_on_their_row(changes, column, rule):
    # The writer used to meet these and stop the practice's whole file (issue 11 item 3).
    frame = frame_of({"charge_id": "C-1"}, {"charge_id": "C-2", **changes}, {"charge_id": "C-3"})
    charges, issues = validate_rows(frame, file="charges.csv", today=TODAY)
    assert [c.charge_id for c in charges] == ["C-1", "C-3"]
    assert [(i.charge_id, i.rule, i.column) for i in issues] == [("C-2", rule, column)]
    value = changes[column]
    assert value not in issues[0].message and (issues[0].value is None or column not in PHI_COLUMNS)


def test_accented_names_are_accepted_and_folded_by_the_writer():
    charges, issues = check(patient_last_name="MÜLLER-GARCÍA", patient_first_name="ZOË")
    assert issues == [] and charges[0].patient_last_name == "MÜLLER-GARCÍA"
