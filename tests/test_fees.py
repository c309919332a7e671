from datetime import date
from decimal import Decimal

import pytest

from otedi.coding.fees import PricingLine, fee_schedule, medicare_localities, price_lines
from otedi.errors import ConfigError
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


# Locality pricing. GPCIs from mappings/fees/gpci_2026.csv (CMS CY2026 Addendum E,
# GPCI2026.csv; see schedules.yaml):
#   Ohio 15202-00       work 1.000  PE 0.913  MP 1.008
#   Manhattan 13202-01  work 1.064  PE 1.162  MP 1.586
#   Alabama 10112-00    work 1.000  PE 0.875  MP 0.566
# RVUs (CMS PPRRVU2026_Jul_nonQPP, non-facility): 97530 w0.44 PE0.60 MP0.01,
# 97535 w0.45 PE0.51 MP0.01; CF $33.4009. Per unit
#   (w x GPCIw + PE x GPCIpe x MPPR + MP x GPCImp) x CF, rounded half up.
def localized(locality):
    schedule, warning = fee_schedule("medicare-pfs-national", DOS, locality)
    return schedule, warning


def test_ohio_locality_worked_example():
    ohio, _ = localized("15202-00")
    assert (ohio.locality, ohio.gpci.locality_name, ohio.gpci.state) == ("15202-00", "OHIO", "OH")
    # 97530 unit 1: 0.44x1.000 + 0.60x0.913 + 0.01x1.008 = 0.99788 x 33.4009 = 33.3300... -> $33.33
    # 97530 unit 2: 0.44x1.000 + 0.30x0.913 + 0.01x1.008 = 0.72398 x 33.4009 = 24.1815... -> $24.18
    # 97535:        0.45x1.000 + 0.255x0.913 + 0.01x1.008 = 0.692895 x 33.4009 = 23.1433... -> $23.14
    # 97535 by an assistant: 23.1433... x 0.85 = 19.6718... -> $19.67
    amounts, issues = price(("97530", 2, False), ("97535", 1, False), schedule=ohio)
    assert amounts == [Decimal("57.51"), Decimal("23.14")] and sum(amounts) == Decimal("80.65")
    assert issues == []
    assert price(("97530", 2, False), ("97535", 1, True), schedule=ohio)[0] == [
        Decimal("57.51"), Decimal("19.67")]


def test_manhattan_and_alabama_differ_from_ohio_and_national():
    nyc, _ = localized("13202-01")
    # 97530: (0.44x1.064 + 0.60x1.162 + 0.01x1.586) = 1.18122 x CF = 39.4538... -> $39.45
    #        (0.44x1.064 + 0.30x1.162 + 0.01x1.586) = 0.83262 x CF = 27.8102... -> $27.81
    # 97535: (0.45x1.064 + 0.255x1.162 + 0.01x1.586) = 0.79097 x CF = 26.4191... -> $26.42
    assert price(("97530", 2, False), ("97535", 1, False), schedule=nyc)[0] == [
        Decimal("67.26"), Decimal("26.42")]
    alabama, _ = localized("10112-00")
    # 97530: 0.44x1.000 + 0.60x0.875 + 0.01x0.566 = 0.97066 x CF = 32.4209... -> $32.42;
    #        0.44x1.000 + 0.30x0.875 + 0.01x0.566 = 0.70816 x CF = 23.6531... -> $23.65
    # 97535: 0.45x1.000 + 0.255x0.875 + 0.01x0.566 = 0.678785 x CF = 22.6720... -> $22.67
    assert price(("97530", 2, False), ("97535", 1, False), schedule=alabama)[0] == [
        Decimal("56.07"), Decimal("22.67")]
    # national (GPCIs 1.0), ot_billing_rules.md §2.12: $60.12 + $23.88 = $84.00
    assert price(("97530", 2, False), ("97535", 1, False))[0] == [Decimal("60.12"), Decimal("23.88")]


def test_no_locality_is_the_national_schedule():
    national, warning = fee_schedule("medicare-pfs-national", DOS, None)
    assert national == PFS and national.gpci is None and national.locality is None and warning is None


def test_gpcis_of_another_year_warn():
    # The shipped GPCIs are CY2026's: a 2026 date of service prices without a warning, a 2027 one says so.
    _, warning = localized("15202-00")
    assert warning is None
    _, in_2027 = fee_schedule("medicare-pfs-national", date(2027, 2, 1), "15202-00")
    assert in_2027.rule == "fee-schedule-vintage" and "2027-02-01" in in_2027.message


def test_unknown_locality_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'15202-99'.*gpci_2026\.csv"):
        fee_schedule("medicare-pfs-national", DOS, "15202-99")


def test_locality_does_not_change_per_unit_tables():
    uhc, warning = fee_schedule("uhc-ot-demo", DOS, "13202-01")
    assert warning is None and uhc.gpci is None
    assert price(("97530", 2, False), schedule=uhc, factor=None)[0] == [Decimal("77.16")]


def test_gpci_table_is_the_cms_file():
    by_file = medicare_localities()
    assert list(by_file) == ["gpci_2026.csv"]
    table = by_file["gpci_2026.csv"]
    assert len(table) == 109  # CMS Addendum E lists 109 localities
    assert (table["02102-01"].work, table["01112-05"].pe) == (Decimal("1.500"), Decimal("1.410"))
