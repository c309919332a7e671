"""Assistants (OTA/PTA): the 10% de minimis split, the supervising therapist in 2310B, what they may not bill.

Sources: CMS MCPM Pub 100-04 ch.5 §20.1 as reproduced on the CMS "Billing Examples Using CQ/CO Modifiers"
page ("a service is considered to be furnished in whole or in part by a PTA or OTA when more than 10 percent
of the service is furnished by the PTA or OTA"; applied per unit of a timed code); the CY2022 PFS final
rule's "final two units" policy (one unit with the modifier and one without when each furnished 9-14
minutes of the same service); MBPM Pub 100-02 ch.15 §230.1-230.5 (assistants billed under the enrolled
therapist's NPI, no evaluations; SLP assistants not recognized for Medicare coverage).
"""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from otedi.coding.assistants import split_units
from otedi.coding.history import InMemoryHistory
from otedi.coding.scrub import scrub_visit
from otedi.coding.units import CMS_TOTAL_TIME, assign_units
from otedi.issues import Severity
from tests.test_scrub import TODAY, charge, rules_of

SUPERVISOR = dict(supervising_npi="1234567893", supervising_last_name="SMITH", supervising_first_name="ANN")  # the PT/OT of the base charge
COMMERCIAL_DEFAULT = dict(payer_id="55555", payer_name="SOME PLAN", claim_filing_code="CI")


def pt(cid, cpt, minutes, **kw):
    return charge(cid, cpt, minutes, rendering_role="PT", **kw)


def pta(cid, cpt, minutes, **kw):
    return charge(cid, cpt, minutes, rendering_role="PTA", rendering_npi="1326041245", **SUPERVISOR, **kw)


@pytest.mark.parametrize("therapist, assistant, units, expected", [
    (12, 12, 2, (1, 1)),   # final two units, each 9-14 minutes: one with CQ/CO, one without (CY2022 rule)
    (5, 10, 1, (0, 1)),    # the assistant furnished 10 of the unit's 15 minutes (> 10%)
    (14, 1, 1, (1, 0)),    # 1 of 15 minutes is not more than 10%: no modifier
    (13, 2, 1, (0, 1)),    # 2 of 15 minutes is 13%: the unit is furnished in part by the assistant
    (30, 0, 2, (2, 0)),    # the therapist alone
    (0, 38, 3, (0, 3)),    # the assistant alone
    (13, 23, 2, (0, 2)),   # 15 min by the assistant alone, then 8 of the last unit's 21 minutes (> 10%)
])
def test_de_minimis_split(therapist, assistant, units, expected):
    assert split_units(therapist, assistant, units) == expected


def test_same_code_by_therapist_and_assistant_is_two_lines_with_cq_only_on_the_assistants_unit():
    result = scrub_visit([pt("C1", "97110", 12), pta("C2", "97110", 12)], InMemoryHistory(), today=TODAY)
    assert [(ln.charge.charge_id, ln.units, ln.modifiers) for ln in result.lines] == [
        ("C1", 1, ("GP",)), ("C2", 1, ("CQ", "GP"))]
    # Medicare bills the PTA's line under the supervising PT, so both lines share one 2310B
    assert {ln.rendering.npi for ln in result.lines} == {"1234567893"}
    assert result.lines[1].rendering.taxonomy == "225100000X"  # the PT's taxonomy


def test_cms_scenario_with_two_codes():
    # PTA 23 min 97110, PT 13 min 97110, PT 30 min 97140: 66 timed minutes = 4 units (CMS example as
    # reproduced in the secondary copy); 97140 x2 by the PT alone without CQ; 97110's 2 units both carry CQ
    # (one unit furnished by the PTA alone, the other with 8 of its 21 minutes by the PTA: more than 10%).
    result = scrub_visit([pta("C1", "97110", 23), pt("C2", "97110", 13), pt("C3", "97140", 30)],
                         InMemoryHistory(), today=TODAY)
    assert [(ln.charge.charge_id, ln.cpt, ln.units, ln.modifiers) for ln in result.lines] == [
        ("C1", "97110", 2, ("CQ", "GP")), ("C3", "97140", 2, ("GP",))]
    assert result.lines[0].merged_charge_ids == ("C2",)
    assert result.lines[0].charge.minutes == 36 and result.lines[0].charge_amount == Decimal("200.00")
    assert ("C2", "same-code-combined") in rules_of(result, Severity.WARNING)


def test_two_rows_of_one_code_by_the_same_clinician_are_summed_not_dropped():
    rows = [charge("C1", "97530", 10, 1, "80.00"), charge("C2", "97530", 15, 1, "80.00")]
    result = scrub_visit(rows, InMemoryHistory(), today=TODAY)
    [line] = result.lines
    assert (line.charge.charge_id, line.units, line.charge.minutes) == ("C1", 2, 25)
    assert line.charge_amount == Decimal("160.00")  # both rows' charges, not one dropped
    assert line.merged_charge_ids == ("C2",) and not result.rejected


def test_medicare_assistant_without_supervising_therapist_is_rejected():
    ota = charge("C1", "97530", 30, rendering_role="OTA")
    result = scrub_visit([ota], InMemoryHistory(), today=TODAY)
    assert result.lines == [] and rules_of(result, Severity.REJECT) == [("C1", "supervising-required")]
    assert "supervising OT in 2310B" in result.issues[0].message


def test_payer_that_credentials_assistants_gets_the_ota_as_rendering():
    ota = charge("C1", "97530", 30, rendering_role="OTA", rendering_npi="1326041245", **COMMERCIAL_DEFAULT)
    result = scrub_visit([ota], InMemoryHistory(), today=TODAY)
    [line] = result.lines
    assert line.rendering.npi == "1326041245" and line.rendering.taxonomy == "224Z00000X"
    assert line.modifiers == ("CO", "GO")


@pytest.mark.parametrize("role, cpt", [("OTA", "97165"), ("OTA", "97168"), ("PTA", "97161"), ("PTA", "97164")])
def test_assistants_do_not_bill_evaluations(role, cpt):
    result = scrub_visit([charge("C1", cpt, units=1, rendering_role=role, **SUPERVISOR)], InMemoryHistory(),
                         today=TODAY)
    assert result.lines == [] and rules_of(result, Severity.REJECT) == [("C1", "assistant-evaluation")]


def test_slp_assistant_is_not_covered_by_medicare_but_is_by_a_payer_that_pays_them():
    slpa = charge("C1", "92507", units=1, rendering_role="SLPA", rendering_npi="1326041245", **SUPERVISOR)
    result = scrub_visit([slpa], InMemoryHistory(), today=TODAY)
    assert rules_of(result, Severity.REJECT) == [("C1", "assistant-not-covered")]
    assert "MBPM Pub 100-02 ch.15 §230.3.C" in result.issues[0].source
    commercial = scrub_visit([replace(slpa, **COMMERCIAL_DEFAULT)], InMemoryHistory(), today=TODAY)
    assert [ln.modifiers for ln in commercial.lines] == [("GN",)]  # no CMS assistant modifier for SLP


def test_units_pool_keeps_assistant_split_inside_the_code_total():
    result = assign_units([charge("T", "97530", 9, rendering_role="OT"),
                           charge("A", "97530", 14, rendering_role="OTA", **SUPERVISOR)], CMS_TOTAL_TIME)
    assert result.units == {"T": 1, "A": 1}  # 23 minutes = 2 units; each furnished 9-14 minutes


def test_assistant_line_is_priced_at_85_percent_and_therapist_line_in_full():
    result = scrub_visit([charge("C1", "97530", 12), charge("C2", "97530", 12, rendering_role="OTA", **SUPERVISOR)],
                         InMemoryHistory(), today=TODAY)
    by_id = {ln.charge.charge_id: ln for ln in result.lines}
    # PFS 2026 national 97530 (w 0.44, PE 0.60, MP 0.01; CF 33.4009), MPPR 50% PE on the second unit
    assert by_id["C1"].expected_allowed == Decimal("35.07")
    assert by_id["C2"].expected_allowed == Decimal("21.29")  # (0.44 + 0.30 + 0.01) x CF = 25.05, x 0.85
    assert date(2026, 3, 2) == by_id["C2"].charge.service_date
