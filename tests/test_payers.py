from dataclasses import replace
from datetime import date
from decimal import Decimal

from otedi.coding.payers import TimelyFiling, VisitLimit, payer_rules, timely_filing_issue, visit_limit_issues
from otedi.issues import Severity


def test_medicare_part_b():
    rules, warning = payer_rules("15202", "MB", date(2026, 3, 2))
    assert warning is None
    assert (rules.name, rules.kind, rules.claim_filing_codes) == ("CGS MEDICARE PART B OHIO", "medicare", ("MB",))
    assert rules.rounding == "cms_total_time" and rules.kx_threshold and rules.prior_auth is None
    assert rules.assistant_modifiers and rules.assistant_payment_factor == Decimal("0.85")
    assert not rules.assistants_render and rules.assistants_covered == ("OTA", "PTA")  # MBPM ch.15 §230.3-230.5
    assert rules.plan_of_care.certification_days == 90 and rules.progress_report_days == 10
    assert rules.dme == "hold" and rules.ncci_program == "medicare"
    assert rules.timely_filing == TimelyFiling(months=12) and rules.corrected_claim == "reopening"
    assert rules.ncci_ptp and rules.ncci_mue and rules.ncci_modifier_either_column
    assert rules.fee_schedule == "medicare-pfs-national" and "42 CFR 424.44" in rules.source


def test_ohio_medicaid():
    rules, _ = payer_rules("OHMCD", "MC")
    assert (rules.name, rules.kind, rules.claim_filing_codes) == ("OHIO MEDICAID", "medicaid", ("MC",))
    assert rules.prior_auth.required_for("97530", is_therapy=True)
    assert not rules.prior_auth.required_for("97166", is_therapy=True)
    assert rules.prior_auth.required_for("97168", is_therapy=True)
    assert rules.visit_limits == (VisitLimit(30, "calendar_year"),)
    assert rules.timely_filing == TimelyFiling(days=365) and rules.corrected_claim == "frequency_7_8"
    assert rules.fee_schedule == "ohio-medicaid-ot-demo" and not rules.kx_threshold
    assert rules.ncci_program == "medicaid"


def test_unitedhealthcare():
    rules, _ = payer_rules("87726", "CI")
    assert (rules.name, rules.kind) == ("UNITEDHEALTHCARE", "commercial")
    assert rules.rounding == "cms_total_time" and rules.assistant_modifiers and not rules.assistants_render
    assert "Maximum Combined Frequency Per Day" in rules.source
    assert rules.visit_limits == (VisitLimit(20, "calendar_year"),)
    assert rules.timely_filing == TimelyFiling(days=90) and rules.fee_schedule == "uhc-ot-demo"


def test_unknown_payer_falls_back_by_filing_code():
    for filing, kind in (("MB", "medicare"), ("MA", "medicare"), ("MC", "medicaid"), ("CI", "commercial"),
                         ("BL", "commercial"), ("16", "commercial")):
        rules, warning = payer_rules("99999", filing)
        assert rules.fallback and rules.kind == kind
        assert warning.severity == Severity.WARNING and warning.rule == "payer-unknown"
        assert "payer 99999" in warning.message and warning.value == "99999"


def test_payer_file_not_in_effect_falls_back():
    rules, warning = payer_rules("15202", "MB", date(2024, 6, 1))
    assert rules.payer_id == "DEFAULT-MEDICARE" and "none in effect on 2024-06-01" in warning.message


def test_medicare_deadline_is_one_calendar_year():
    tf = TimelyFiling(months=12)
    assert tf.deadline(date(2025, 3, 10)) == date(2026, 3, 10)
    assert tf.deadline(date(2024, 2, 29)) == date(2025, 2, 28)
    assert TimelyFiling(days=90).deadline(date(2026, 1, 1)) == date(2026, 4, 1)


def test_timely_filing_hold_and_warning():
    rules, _ = payer_rules("15202", "MB")
    late = timely_filing_issue(rules, date(2025, 1, 10), date(2026, 1, 11), "C1")
    assert (late.severity, late.rule, late.charge_id) == (Severity.HOLD, "timely-filing", "C1")
    assert "ended 2026-01-10" in late.message
    near = timely_filing_issue(rules, date(2025, 1, 10), date(2025, 12, 20), "C1")
    assert near.severity == Severity.WARNING and "21 days left" in near.message
    assert timely_filing_issue(rules, date(2025, 1, 10), date(2025, 2, 1), "C1") is None


def test_calendar_year_visit_limit():
    rules, _ = payer_rules("OHMCD", "MC")
    dos = date(2026, 12, 1)
    prior_29 = {date(2026, 1, 1 + i) for i in range(29)} | {date(2025, 12, 30)}
    assert visit_limit_issues(rules, prior_29, dos, "C1") == []
    [issue] = visit_limit_issues(rules, prior_29 | {date(2026, 11, 2)}, dos, "C1")
    assert (issue.severity, issue.rule) == (Severity.HOLD, "visit-limit")
    assert "visit 31 of OHIO MEDICAID's limit of 30 visits per calendar year" in issue.message


def test_rolling_visit_limit():
    rules = replace(payer_rules("87726", "CI")[0], visit_limits=(VisitLimit(2, "rolling_days", 30),))
    dos = date(2026, 3, 31)
    assert visit_limit_issues(rules, {date(2026, 3, 1), date(2026, 2, 28)}, dos, "C1") == []  # 03-01 is day 31
    [issue] = visit_limit_issues(rules, {date(2026, 3, 2), date(2026, 3, 10)}, dos, "C1")
    assert "2 visits per 30 days (2026-03-02 to 2026-03-31)" in issue.message
