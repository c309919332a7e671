from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otedi.charges.record import Charge
from otedi.coding.units import (
    CMS_TOTAL_TIME, CPT_MIDPOINT, allocate_total_time, assign_units, midpoint_units, units_for_total_minutes,
)
from otedi.issues import Severity

DOS = date(2026, 3, 2)


def charge(charge_id: str, cpt: str, minutes: int | None = None, units: int | None = None) -> Charge:
    return Charge(
        charge_id=charge_id, practice_id="BRIGHTHANDS", service_date=DOS, patient_id="P1",
        patient_last_name="DOE", patient_first_name="JANE", patient_dob=date(1950, 1, 1), patient_sex="F",
        patient_address1="1 MAIN ST", patient_city="COLUMBUS", patient_state="OH", patient_zip="43215",
        payer_id="15202", payer_name="CGS MEDICARE PART B OHIO", claim_filing_code="MB", member_id="1EG4TE5MK73",
        rendering_npi="1234567893", rendering_last_name="SMITH", rendering_first_name="ANN", rendering_role="OT",
        referring_npi="1987654328", referring_last_name="JONES", referring_first_name="BOB", place_of_service="11",
        cpt=cpt, charge_amount=Decimal("100.00"), dx_codes=("R2681",), minutes=minutes, units=units,
        plan_of_care_start=date(2026, 2, 16), plan_of_care_signed_date=date(2026, 2, 18),
        plan_of_care_certified_through=date(2026, 5, 16))


def by_code(charges, method=CMS_TOTAL_TIME):
    result = assign_units(charges, method)
    return {c.cpt: result.units[c.charge_id] for c in charges}, result.issues


@pytest.mark.parametrize("minutes,units", [
    (0, 0), (7, 0), (8, 1), (22, 1), (23, 2), (37, 2), (38, 3), (52, 3), (53, 4), (67, 4),
    (68, 5), (82, 5), (83, 6), (97, 6), (98, 7), (112, 7), (113, 8), (127, 8), (128, 9),
])
def test_total_time_table(minutes, units):
    assert units_for_total_minutes(minutes) == units


# CMS / MAC worked examples, ot_billing_rules.md §2.2.5
def test_cms_example_24_min_97112_and_23_min_97110():
    units, issues = by_code([charge("A", "97112", 24), charge("B", "97110", 23)])
    assert units == {"97112": 2, "97110": 1}
    assert issues == []


def test_cms_example_33_min_97110_and_7_min_97140():
    units, _ = by_code([charge("A", "97110", 33), charge("B", "97140", 7)])
    assert units == {"97110": 2, "97140": 1}


def test_cms_example_four_codes_49_minutes():
    charges = [charge("A", "97110", 18), charge("B", "97140", 13), charge("C", "97116", 10), charge("D", "97035", 8)]
    units, issues = by_code(charges)
    assert units == {"97110": 1, "97140": 1, "97116": 1, "97035": 0}
    [issue] = issues
    assert (issue.severity, issue.rule, issue.charge_id) == (Severity.REJECT, "8-minute-rule", "D")
    assert "97035" in issue.message and "49 timed minutes allow 3 unit(s)" in issue.message


def test_cms_example_two_services_of_7_minutes():
    units, issues = by_code([charge("A", "97110", 7), charge("B", "97140", 7)])
    assert sum(units.values()) == 1
    assert units == {"97110": 1, "97140": 0}  # tie: charting order decides
    assert [i.charge_id for i in issues] == ["B"]


def test_two_short_services_bill_the_longer_one():
    units, _ = by_code([charge("A", "97110", 6), charge("B", "97140", 7)])
    assert units == {"97110": 0, "97140": 1}


def test_lone_service_under_8_minutes_is_rejected():
    units, [issue] = by_code([charge("A", "97530", 7)])
    assert units == {"97530": 0}
    assert issue.severity == Severity.REJECT and issue.rule == "8-minute-rule"
    assert "lone timed service under 8 minutes" in issue.message


def test_untimed_codes_stay_out_of_the_pool():
    units, issues = by_code([charge("A", "97166", units=1), charge("B", "97150", units=1), charge("C", "97530", 10)])
    assert units == {"97166": 1, "97150": 1, "97530": 1}
    assert issues == []


def test_midpoint_rounds_each_code_alone():
    charges = [charge("A", "97110", 8), charge("B", "97140", 8)]
    assert by_code(charges, CPT_MIDPOINT)[0] == {"97110": 1, "97140": 1}
    assert by_code(charges, CMS_TOTAL_TIME)[0] == {"97110": 1, "97140": 0}
    assert by_code([charge("A", "97110", 7)], CPT_MIDPOINT)[0] == {"97110": 0}
    assert by_code([charge("A", "97110", 23)], CPT_MIDPOINT)[0] == {"97110": 2}


@pytest.mark.parametrize("minutes,unit,units", [(7, 15, 0), (8, 15, 1), (15, 30, 0), (16, 30, 1), (30, 60, 0),
                                                (31, 60, 1), (90, 60, 1), (91, 60, 2)])
def test_midpoint_units(minutes, unit, units):
    assert midpoint_units(minutes, unit) == units


def test_96125_per_hour_is_rounded_alone_outside_the_pool():
    units, _ = by_code([charge("A", "96125", 45), charge("B", "97530", 10)])
    assert units == {"96125": 1, "97530": 1}


def test_caregiver_training_first_30_minutes_then_15():
    assert by_code([charge("A", "97550", 20)])[0] == {"97550": 1}
    assert by_code([charge("A", "97550", 30), charge("B", "97551", 15)])[0] == {"97550": 1, "97551": 1}
    assert by_code([charge("A", "97550", 30), charge("B", "97551", 7)])[0] == {"97550": 1, "97551": 0}
    units, [issue] = by_code([charge("A", "97550", 15)])
    assert units == {"97550": 0} and issue.severity == Severity.REJECT


def test_cognitive_initial_code_is_one_unit_and_addon_takes_the_rest():
    units, issues = by_code([charge("A", "97129", 10), charge("B", "97130", 20)])
    assert units == {"97129": 1, "97130": 1}
    assert issues == []


def test_cognitive_initial_code_charted_alone_with_extra_time_is_held():
    units, [issue] = by_code([charge("A", "97129", 40)])
    assert units == {"97129": 1}
    assert issue.severity == Severity.HOLD and "add a 97130 charge for the other 2 unit(s)" in issue.message


def test_cognitive_family_shares_the_pool():
    charges = [charge("A", "97110", 20), charge("B", "97129", 10), charge("C", "97130", 8)]
    units, issues = by_code(charges)
    assert units == {"97110": 2, "97129": 1, "97130": 0}
    assert [(i.charge_id, i.severity) for i in issues] == [("C", Severity.REJECT)]


def test_second_charge_of_a_code_by_the_same_role_rides_on_the_first_line():
    result = assign_units([charge("A", "97110", 10), charge("B", "97110", 10)], CMS_TOTAL_TIME)
    assert result.units == {"A": 1, "B": 0} and result.merged == {"B": "A"}  # 20 minutes = 1 unit, one line
    [issue] = result.issues
    assert issue.rule == "same-code-combined" and issue.severity == Severity.WARNING
    assert issue.charge_id == "B" and "charge A" in issue.message


def test_timed_code_without_minutes_keeps_units_and_holds():
    result = assign_units([charge("A", "97530", units=2)], CMS_TOTAL_TIME)
    assert result.units == {"A": 2}
    assert result.issues[0].severity == Severity.HOLD and result.issues[0].column == "minutes"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=90), min_size=1, max_size=6))
def test_allocation_properties(minutes_list):
    minutes = {f"code{i}": m for i, m in enumerate(minutes_list)}
    units = allocate_total_time(minutes)
    assert sum(units.values()) == units_for_total_minutes(sum(minutes_list))
    for key, m in minutes.items():
        assert units[key] <= m // 15 + 1
        assert units[key] >= m // 15


def test_untimed_code_charted_with_zero_units_is_rejected():
    result = assign_units([charge("A", "97150", units=0)], CMS_TOTAL_TIME)
    assert result.units == {"A": 0}
    assert [(i.severity, i.rule) for i in result.issues] == [(Severity.REJECT, "units")]
