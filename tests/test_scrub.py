from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from otedi.coding.history import InMemoryHistory
from otedi.coding.scrub import scrub_visit
from otedi.issues import Severity
from tests.test_units import charge as base_charge

DOS = date(2026, 3, 2)
TODAY = date(2026, 3, 5)
MEDICAID = dict(payer_id="OHMCD", payer_name="OHIO MEDICAID", claim_filing_code="MC")
UHC = dict(payer_id="87726", payer_name="UNITEDHEALTHCARE", claim_filing_code="CI")


def charge(charge_id, cpt, minutes=None, units=None, amount="100.00", **kw):
    return replace(base_charge(charge_id, cpt, minutes, units), charge_amount=Decimal(amount), **kw)


def summary(result):
    return [(ln.charge.charge_id, ln.cpt, ln.units, ln.modifiers, ln.expected_allowed) for ln in result.lines]


def rules_of(result, severity=None):
    return [(i.charge_id, i.rule) for i in result.issues if severity is None or i.severity == severity]


def seeded(amount: str, day: date, patient="P1") -> InMemoryHistory:
    history = InMemoryHistory()
    history.record(charge_id="OLD1", patient_id=patient, payer_id="15202", payer_kind="medicare",
                   service_date=day, cpt="97530", modifiers=("GO",), expected_allowed=Decimal(amount))
    return history


def test_medicare_visit_worked_example():
    result = scrub_visit([charge("C1", "97530", 30, 2, "240.00"), charge("C2", "97535", 15, 1, "120.00")],
                         InMemoryHistory(), today=TODAY)
    assert summary(result) == [("C1", "97530", 2, ("GO",), Decimal("60.12")),
                               ("C2", "97535", 1, ("GO",), Decimal("23.88"))]
    assert [ln.charge_amount for ln in result.lines] == [Decimal("240.00"), Decimal("120.00")]
    assert result.issues == [] and not result.held


def test_eval_day():
    result = scrub_visit([charge("C1", "97166", units=1), charge("C2", "97530", 15, 1)], InMemoryHistory(), today=TODAY)
    assert sum(ln.expected_allowed for ln in result.lines) == Decimal("125.59")


def test_cms_example_through_scrub_rejects_the_unbilled_code():
    charges = [charge("C1", "97110", 18), charge("C2", "97140", 13), charge("C3", "97116", 10), charge("C4", "97035", 8)]
    result = scrub_visit(charges, InMemoryHistory(), today=TODAY)
    assert [(ln.cpt, ln.units) for ln in result.lines] == [("97110", 1), ("97140", 1), ("97116", 1)]
    assert rules_of(result) == [("C4", "8-minute-rule")] and result.rejected == {"C4"}


def test_charge_scaled_to_billed_units():
    result = scrub_visit([charge("C1", "97110", 35, 3, "300.00")], InMemoryHistory(), today=TODAY)
    [line] = result.lines
    assert (line.units, line.charge_amount) == (2, Decimal("200.00"))
    [issue] = result.issues
    assert (issue.severity, issue.rule) == (Severity.WARNING, "units-changed")
    assert "charted 3 unit(s), billed 2" in issue.message


def test_kx_2026_on_crossing_line_and_after():
    history = seeded("2440.00", date(2026, 2, 2))
    charges = [charge("C1", "97530", 15), charge("C2", "97535", 15), charge("C3", "97110", 15)]
    result = scrub_visit(charges, history, today=TODAY)
    # 2440.00 + 35.07 = 2475.07 (under $2,480); + 23.88 crosses; every later line too
    assert [ln.modifiers for ln in result.lines] == [("GO",), ("GO", "KX"), ("GO", "KX")]
    assert rules_of(result, Severity.WARNING) == [("C2", "kx-threshold"), ("C3", "kx-threshold")]
    assert not result.held


def test_kx_2025_uses_2410():
    charges = [charge("C1", "97530", 15, service_date=date(2025, 6, 2))]
    result = scrub_visit(charges, seeded("2380.00", date(2025, 5, 1)), today=date(2025, 6, 5))
    assert result.lines[0].modifiers == ("GO", "KX")  # 2380.00 + 35.07 >= 2410
    assert ("C1", "kx-threshold") in rules_of(result, Severity.WARNING)
    # the same amounts in 2026 stay under $2,480
    result = scrub_visit([charge("C1", "97530", 15)], seeded("2380.00", date(2026, 2, 2)), today=TODAY)
    assert result.lines[0].modifiers == ("GO",)


def test_kx_bucket_ignores_other_years_payers_and_patients():
    history = seeded("2470.00", date(2025, 12, 30))
    history.record(charge_id="OLD2", patient_id="P1", payer_id="87726", payer_kind="commercial",
                   service_date=date(2026, 2, 1), cpt="97530", modifiers=("GO",), expected_allowed=Decimal("900"))
    history.record(charge_id="OLD3", patient_id="P2", payer_id="15202", payer_kind="medicare",
                   service_date=date(2026, 2, 1), cpt="97530", modifiers=("GO",), expected_allowed=Decimal("2470"))
    assert history.incurred("P1", "OT", DOS) == Decimal("0.00")
    assert scrub_visit([charge("C1", "97530", 15)], history, today=TODAY).lines[0].modifiers == ("GO",)


def test_no_kx_for_commercial():
    history = seeded("5000.00", date(2026, 2, 2))
    result = scrub_visit([charge("C1", "97530", 15, **UHC)], history, today=TODAY)
    assert result.lines[0].modifiers == ("GO",)


SUPERVISOR = dict(supervising_npi="1497758544", supervising_last_name="OKAFOR", supervising_first_name="GRACE")


def test_ota_gets_co_and_85_percent():
    result = scrub_visit([charge("C1", "97530", 30, rendering_role="OTA", **SUPERVISOR)], InMemoryHistory(),
                         today=TODAY)
    assert summary(result) == [("C1", "97530", 2, ("CO", "GO"), Decimal("51.10"))]  # (35.07 + 25.05) x 0.85


def test_medicaid_prior_auth_missing_holds_treatment_not_evaluation():
    charges = [charge("C1", "97166", units=1, **MEDICAID), charge("C2", "97530", 30, **MEDICAID)]
    result = scrub_visit(charges, InMemoryHistory(), today=TODAY)
    assert rules_of(result, Severity.HOLD) == [("C2", "prior-auth")] and result.held
    assert "OHIO MEDICAID requires prior authorization" in result.issues[0].message
    authorised = [replace(c, prior_auth_number="PA12345") for c in charges]
    assert not scrub_visit(authorised, InMemoryHistory(), today=TODAY).held


def test_medicaid_visit_limit():
    history = InMemoryHistory()
    for i in range(30):
        history.record(charge_id=f"V{i}", patient_id="P1", payer_id="OHMCD", payer_kind="medicaid",
                       service_date=date(2026, 1, 1 + i % 28) if i < 28 else date(2026, 2, i - 27),
                       cpt="97530", modifiers=("GO",), expected_allowed=Decimal("24.55"))
    c = charge("C1", "97530", 15, prior_auth_number="PA1", **MEDICAID)
    result = scrub_visit([c], history, today=TODAY)
    assert rules_of(result, Severity.HOLD) == [("C1", "visit-limit")]
    assert "visit 31 of OHIO MEDICAID's limit of 30 visits per calendar year" in result.issues[0].message


def test_timely_filing_passed_holds():
    c = charge("C1", "97530", 15, service_date=date(2025, 1, 10))
    result = scrub_visit([c], InMemoryHistory(), today=date(2026, 1, 12))
    assert ("C1", "timely-filing") in rules_of(result, Severity.HOLD)
    assert scrub_visit([replace(c, **UHC)], InMemoryHistory(), today=date(2025, 4, 11)).held  # 90 days
    assert not scrub_visit([replace(c, **UHC)], InMemoryHistory(), today=date(2025, 2, 1)).held


def test_unknown_payer_falls_back_with_a_warning():
    c = charge("C1", "97110", 8, payer_id="99999", payer_name="SOME PLAN", claim_filing_code="CI")
    result = scrub_visit([c, charge("C2", "97140", 8, payer_id="99999", payer_name="SOME PLAN",
                                    claim_filing_code="CI")], InMemoryHistory(), today=TODAY)
    assert result.payer.payer_id == "DEFAULT-COMMERCIAL"
    assert rules_of(result)[0] == ("C1", "payer-unknown") and "payer 99999" in result.issues[0].message
    assert [(ln.cpt, ln.units) for ln in result.lines] == [("97110", 1)]  # CMS total time: 16 min = 1 unit


EGHP = dict(payer_id="DEMOEGHP", payer_name="EMPLOYER GROUP HEALTH PLAN", claim_filing_code="CI")


def test_uhc_follows_the_cms_total_time_rule():
    # UHC "Maximum Combined Frequency per Day" policy: in alignment with CMS, eight minutes for one unit.
    charges = [charge("C1", "97110", 8, **UHC), charge("C2", "97140", 8, **UHC)]
    result = scrub_visit(charges, InMemoryHistory(), today=TODAY)
    assert [(ln.cpt, ln.units) for ln in result.lines] == [("97110", 1)]  # 16 total minutes = 1 unit


def test_commercial_midpoint_rounding():
    charges = [charge("C1", "97110", 8, **EGHP), charge("C2", "97140", 8, **EGHP)]
    result = scrub_visit(charges, InMemoryHistory(), today=TODAY)
    assert [(ln.cpt, ln.units, ln.expected_allowed) for ln in result.lines] == [
        ("97110", 1, Decimal("31.97")), ("97140", 1, Decimal("30.49"))]


def test_medicare_status_b_and_i_rejected_with_replacement():
    charges = [charge("C1", "97010", units=1), charge("C2", "97014", units=1), charge("C3", "97530", 15)]
    result = scrub_visit(charges, InMemoryHistory(), today=TODAY)
    assert [ln.cpt for ln in result.lines] == ["97530"]
    assert rules_of(result, Severity.REJECT) == [("C1", "medicare-status"), ("C2", "medicare-status")]
    assert "bill G0283" in result.issues[1].message
    # a commercial payer still takes 97014
    assert [ln.cpt for ln in scrub_visit([charge("C2", "97014", units=1, **UHC)], InMemoryHistory(),
                                         today=TODAY).lines] == ["97014"]


def test_deleted_code_rejected():
    result = scrub_visit([charge("C1", "97003", units=1)], InMemoryHistory(), today=TODAY)
    assert result.lines == [] and rules_of(result) == [("C1", "code-set")]
    assert "bill 97165, 97166 or 97167" in result.issues[0].message


def test_ncci_through_scrub():
    active = scrub_visit([charge("C1", "97530", 30), charge("C2", "97750", 15)], InMemoryHistory(), today=TODAY)
    assert rules_of(active, Severity.HOLD) == [("C2", "ncci-ptp")]
    bypassed = scrub_visit([charge("C1", "97530", 30), charge("C2", "97750", 15, modifiers=("XU",))],
                           InMemoryHistory(), today=TODAY)
    assert not bypassed.held and bypassed.lines[1].modifiers == ("GO", "XU")
    deleted = scrub_visit([charge("C1", "97140", 30), charge("C2", "97530", 30)], InMemoryHistory(), today=TODAY)
    assert not deleted.held and all("59" not in ln.modifiers for ln in deleted.lines)


def test_mue_and_add_on_through_scrub():
    result = scrub_visit([charge("C1", "97530", 105)], InMemoryHistory(), today=TODAY)
    assert result.lines[0].units == 7 and rules_of(result, Severity.HOLD) == [("C1", "mue")]
    result = scrub_visit([charge("C1", "97130", 30)], InMemoryHistory(), today=TODAY)
    assert rules_of(result, Severity.HOLD) == [("C1", "ncci-aoc")]


def test_history_untouched_until_recorded():
    history = InMemoryHistory()
    result = scrub_visit([charge("C1", "97530", 30), charge("C2", "97535", 15)], history, today=TODAY)
    assert len(history) == 0
    history.record_visit(result)
    history.record_visit(result)  # idempotent: keyed by charge_id
    assert history.incurred("P1", "OT", DOS) == Decimal("84.00")
    assert history.visit_dates("P1", "15202", date(2026, 1, 1), date(2026, 12, 31)) == {DOS}


def test_messages_carry_no_patient_identifiers():
    charges = [charge("C1", "97530", 105, **MEDICAID), charge("C2", "97130", 5, **MEDICAID),
               charge("C3", "97110", 3, 2, **MEDICAID)]
    result = scrub_visit(charges, InMemoryHistory(), today=date(2027, 6, 1))
    assert len(result.issues) >= 4
    c = charges[0]
    for issue in result.issues:
        assert issue.charge_id and issue.rule and issue.source
        text = " ".join(str(v) for v in issue.as_dict().values())
        for secret in (c.patient_last_name, c.patient_first_name, c.member_id, str(c.patient_dob)):
            assert secret not in text


def test_rejects_charges_of_more_than_one_visit():
    with pytest.raises(ValueError, match="one patient, payer, practice and date"):
        scrub_visit([charge("C1", "97530", 15), charge("C2", "97530", 15, service_date=date(2026, 3, 3))],
                    InMemoryHistory(), today=TODAY)


def test_always_therapy_code_at_a_hospital_place_of_service_is_held_for_medicare():
    # 97530 has PC/TC indicator 7 in the 2026 PFS file; 97129 has 0 (not restricted).
    charges = [charge("C1", "97530", 30, place_of_service="22"), charge("C2", "97129", 15, place_of_service="22")]
    result = scrub_visit(charges, InMemoryHistory(), today=TODAY)
    assert rules_of(result, Severity.HOLD) == [("C1", "therapist-in-hospital-setting")]
    [held] = [i for i in result.issues if i.rule == "therapist-in-hospital-setting"]
    assert "837I" in held.message and held.value == "22"
    assert not scrub_visit([charge("C1", "97530", 30, place_of_service="11")], InMemoryHistory(), today=TODAY).held
    commercial = [charge("C1", "97530", 30, place_of_service="22", **UHC)]
    assert "therapist-in-hospital-setting" not in [r for _, r in rules_of(scrub_visit(commercial, InMemoryHistory(),
                                                                                      today=TODAY))]
