from dataclasses import replace
from datetime import date
from decimal import Decimal

from otedi.coding.codes import lookup
from otedi.coding.modifiers import assign_kx, kx_threshold, line_modifiers, order_modifiers
from otedi.coding.payers import payer_rules
from otedi.issues import Severity
from tests.test_units import charge

MEDICARE = payer_rules("15202", "MB")[0]


def test_order_dedupes_and_puts_pricing_first():
    assert order_modifiers(["59", "kx", "GO", "CO", "GO", "RT"]) == ("CO", "GO", "KX", "59", "RT")
    assert order_modifiers(["XU", "95", "GO"]) == ("GO", "XU", "95")


def test_go_on_every_therapy_line():
    assert line_modifiers(charge("A", "97530", 15), lookup("97530"), MEDICARE, kx=False) == (("GO",), [])
    # "sometimes therapy" codes: every line here is furnished by an OT practice under a plan of care
    assert line_modifiers(charge("A", "97129", 15), lookup("97129"), MEDICARE, kx=False)[0] == ("GO",)
    # orthoses are not therapy codes
    assert line_modifiers(charge("A", "L3808", units=1), lookup("L3808"), MEDICARE, kx=False)[0] == ()


def test_co_with_go_for_an_assistant():
    ota = replace(charge("A", "97535", 15), rendering_role="OTA")
    assert line_modifiers(ota, lookup("97535"), MEDICARE, kx=True)[0] == ("CO", "GO", "KX")


def test_charted_modifiers_kept_and_ordered():
    c = replace(charge("A", "97530", 15), modifiers=("XU", "GO"))
    assert line_modifiers(c, lookup("97530"), MEDICARE, kx=True) == (("GO", "KX", "XU"), [])


def test_charted_pt_modifier_is_a_hold():
    c = replace(charge("A", "97110", 15), modifiers=("GP",))
    mods, [issue] = line_modifiers(c, lookup("97110"), MEDICARE, kx=False)
    assert mods == ("GP", "GO")  # kept as charted for the biller to fix
    assert (issue.severity, issue.rule, issue.charge_id) == (Severity.HOLD, "discipline-modifier", "A")


def test_more_than_four_modifiers_is_a_hold():
    c = replace(charge("A", "97110", 15), modifiers=("59", "RT", "95"), rendering_role="OTA")
    mods, [issue] = line_modifiers(c, lookup("97110"), MEDICARE, kx=False)
    assert mods == ("CO", "GO", "59", "RT", "95")
    assert issue.severity == Severity.HOLD and issue.rule == "modifier-count"


def test_kx_thresholds_by_year():
    assert kx_threshold(date(2025, 6, 1)).amount == Decimal("2410.00")
    assert kx_threshold(date(2026, 1, 1)).amount == Decimal("2480.00")
    assert kx_threshold(date(2024, 12, 31)).amount == Decimal("2330.00")
    assert kx_threshold(date(2027, 1, 1)) is None


def test_kx_on_the_crossing_line_and_after():
    lines = [(charge("A", "97530", 15), Decimal("35.07")), (charge("B", "97535", 15), Decimal("23.88")),
             (charge("C", "97110", 15), Decimal("16.79"))]
    kx, issues = assign_kx(lines, Decimal("2440.00"), date(2026, 3, 2))
    assert kx == {"B", "C"}  # 2475.07 after A; 2498.95 after B
    assert [(i.charge_id, i.severity, i.rule) for i in issues] == [
        ("B", Severity.WARNING, "kx-threshold"), ("C", Severity.WARNING, "kx-threshold")]
    assert "$2,480.00" in issues[0].message and "medical necessity" in issues[0].message


def test_kx_threshold_missing_for_the_year_holds():
    kx, [issue] = assign_kx([(charge("A", "97530", 15), Decimal("35.07"))], Decimal("0"), date(2027, 2, 1))
    assert kx == set() and issue.severity == Severity.HOLD and "2027" in issue.message
