from datetime import date
from decimal import Decimal

from otedi.coding.fees import PricingLine, fee_schedule, price_lines
from otedi.issues import Severity

DOS = date(2026, 3, 2)
PFS, _ = fee_schedule("medicare-pfs-national", DOS)
CO = Decimal("0.85")


def price(*lines, schedule=PFS, factor=CO):
    amounts, issues = price_lines([PricingLine(f"C{i}", cpt, units, assistant)
                                   for i, (cpt, units, assistant) in enumerate(lines)], schedule, factor)
    return list(amounts.values()), issues


def test_reference_worked_example_mppr():
    # ot_billing_rules.md §2.12: 97530 x2 ($35.07 + $25.05) + 97535 x1 ($23.88) = $84.00
    amounts, issues = price(("97530", 2, False), ("97535", 1, False))
    assert amounts == [Decimal("60.12"), Decimal("23.88")]
    assert sum(amounts) == Decimal("84.00") and issues == []


def test_highest_pe_unit_is_full_whatever_the_order():
    amounts, _ = price(("97535", 1, False), ("97530", 2, False))
    assert amounts == [Decimal("23.88"), Decimal("60.12")]


def test_reference_eval_day():
    amounts, _ = price(("97166", 1, False), ("97530", 1, False))
    assert amounts == [Decimal("100.54"), Decimal("25.05")] and sum(amounts) == Decimal("125.59")


def test_assistant_line_paid_at_85_percent():
    assert price(("97530", 2, False), ("97535", 1, True))[0] == [Decimal("60.12"), Decimal("20.30")]
    assert price(("97530", 1, True))[0] == [Decimal("29.81")]  # 35.070945 x 0.85


def test_codes_without_mppr_are_paid_in_full():
    assert price(("97530", 1, False), ("97129", 1, False))[0] == [Decimal("35.07"), Decimal("22.38")]


def test_status_b_and_i_are_zero():
    assert price(("97010", 1, False), ("97014", 1, False))[0] == [Decimal("0.00"), Decimal("0.00")]


def test_code_missing_from_schedule_warns():
    amounts, [issue] = price(("L3808", 1, False))
    assert amounts == [None]
    assert (issue.severity, issue.rule, issue.charge_id) == (Severity.WARNING, "fee-schedule", "C0")


def test_per_unit_tables():
    uhc, _ = fee_schedule("uhc-ot-demo", DOS)
    assert price(("97530", 2, False), ("97535", 1, True), schedule=uhc, factor=None)[0] == [
        Decimal("77.16"), Decimal("35.64")]
    medicaid, _ = fee_schedule("ohio-medicaid-ot-demo", DOS)
    assert price(("97530", 2, False), schedule=medicaid, factor=None)[0] == [Decimal("49.10")]
    assert "DEMO" in uhc.source and "DEMO" in medicaid.source


def test_no_schedule_for_the_year_uses_the_nearest_with_a_warning():
    schedule, warning = fee_schedule("medicare-pfs-national", date(2025, 6, 1))
    assert schedule.file == "medicare_pfs_2026_national.csv"
    assert warning.severity == Severity.WARNING and "2025-06-01" in warning.message
