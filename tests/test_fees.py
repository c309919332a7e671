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


# Locality pricing. GPCIs from mappings/fees/gpci_2025.csv (CMS CY2025 Addendum E,
# RVU25D - a stand-in until GPCI2026.csv is shipped; see schedules.yaml):
#   Ohio 15202-00       work 1.000  PE 0.911  MP 1.033
#   Manhattan 13202-01  work 1.065  PE 1.166  MP 1.656
#   Alabama 10112-00    work 1.000  PE 0.869  MP 0.575
# RVUs (CMS PPRRVU2026_Jul_nonQPP, non-facility): 97530 w0.44 PE0.60 MP0.01,
# 97535 w0.45 PE0.51 MP0.01; CF $33.4009. Per unit
#   (w x GPCIw + PE x GPCIpe x MPPR + MP x GPCImp) x CF, rounded half up.
def localized(locality):
    schedule, warning = fee_schedule("medicare-pfs-national", DOS, locality)
    return schedule, warning


def test_ohio_locality_worked_example():
    ohio, _ = localized("15202-00")
    assert (ohio.locality, ohio.gpci.locality_name, ohio.gpci.state) == ("15202-00", "OHIO", "OH")
    # 97530 unit 1: 0.44x1.000 + 0.60x0.911 + 0.01x1.033 = 0.99693 x 33.4009 = 33.2983... -> $33.30
    # 97530 unit 2: 0.44x1.000 + 0.30x0.911 + 0.01x1.033 = 0.72363 x 33.4009 = 24.1698... -> $24.17
    # 97535:        0.45x1.000 + 0.255x0.911 + 0.01x1.033 = 0.692635 x 33.4009 = 23.1346... -> $23.13
    # 97535 by an assistant: 23.1346... x 0.85 = 19.6644... -> $19.66
    amounts, issues = price(("97530", 2, False), ("97535", 1, False), schedule=ohio)
    assert amounts == [Decimal("57.47"), Decimal("23.13")] and sum(amounts) == Decimal("80.60")
    assert issues == []
    assert price(("97530", 2, False), ("97535", 1, True), schedule=ohio)[0] == [
        Decimal("57.47"), Decimal("19.66")]


def test_manhattan_and_alabama_differ_from_ohio_and_national():
    nyc, _ = localized("13202-01")
    # 97530: (0.44x1.065 + 0.60x1.166 + 0.01x1.656) = 1.18476 x CF = 39.5720... -> $39.57
    #        (0.44x1.065 + 0.30x1.166 + 0.01x1.656) = 0.83496 x CF = 27.8884... -> $27.89
    # 97535: (0.45x1.065 + 0.255x1.166 + 0.01x1.656) = 0.79314 x CF = 26.4915... -> $26.49
    assert price(("97530", 2, False), ("97535", 1, False), schedule=nyc)[0] == [
        Decimal("67.46"), Decimal("26.49")]
    alabama, _ = localized("10112-00")
    # 97530: 0.96715 x CF = 32.3036... -> $32.30; 0.70645 x CF = 23.5960... -> $23.60
    # 97535: 0.677345 x CF = 22.6239... -> $22.62
    assert price(("97530", 2, False), ("97535", 1, False), schedule=alabama)[0] == [
        Decimal("55.90"), Decimal("22.62")]
    # national (GPCIs 1.0), ot_billing_rules.md §2.12: $60.12 + $23.88 = $84.00
    assert price(("97530", 2, False), ("97535", 1, False))[0] == [Decimal("60.12"), Decimal("23.88")]


def test_no_locality_is_the_national_schedule():
    national, warning = fee_schedule("medicare-pfs-national", DOS, None)
    assert national is PFS and national.gpci is None and national.locality is None and warning is None


def test_stand_in_gpci_year_warns():
    # The shipped GPCIs are CY2025's: a 2026 date of service says so.
    ohio, warning = localized("15202-00")
    assert warning.severity == Severity.WARNING and "gpci_2025.csv" in warning.message
    assert "15202-00" in warning.message and "2026-03-02" in warning.message
    _, in_2025 = fee_schedule("medicare-pfs-national", date(2025, 6, 1), "15202-00")
    assert "2025-06-01" in in_2025.message  # the schedule (2026 RVUs) is the one out of date here


def test_unknown_locality_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'15202-99'.*gpci_2025\.csv"):
        fee_schedule("medicare-pfs-national", DOS, "15202-99")


def test_locality_does_not_change_per_unit_tables():
    uhc, warning = fee_schedule("uhc-ot-demo", DOS, "13202-01")
    assert warning is None and uhc.gpci is None
    assert price(("97530", 2, False), schedule=uhc, factor=None)[0] == [Decimal("77.16")]


def test_gpci_table_is_the_cms_file():
    by_file = medicare_localities()
    assert list(by_file) == ["gpci_2025.csv"]
    table = by_file["gpci_2025.csv"]
    assert len(table) == 109  # CMS Addendum E lists 109 localities
    assert (table["02102-01"].work, table["01112-05"].pe) == (Decimal("1.500"), Decimal("1.419"))
