from dataclasses import fields, replace
from datetime import date
from decimal import Decimal

import pytest
import yaml

from otedi import config
from otedi.coding.payers import (PayerFile, PayerRules, TimelyFiling, VisitLimit, payer_rules, timely_filing_issue,
                                 visit_limit_issues)
from otedi.errors import ConfigError
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


# -- pydantic validation of payers/*.yaml: the file, the key, what is allowed ----------------------------------

UHC = "87726_unitedhealthcare.yaml"


def edit_payer(root, name, **changes):
    path = root / "payers" / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for k, v in changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def payer_error() -> str:
    with pytest.raises(ConfigError) as exc:
        payer_rules("87726", "CI")
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_the_payer_model_has_a_key_for_every_payer_rule():
    from_file = set(PayerFile.model_fields) | {"file", "dme_note"}  # file: its name; dme: {action, note}
    assert {f.name for f in fields(PayerRules)} <= from_file


@pytest.mark.parametrize("change, problem", [
    ({"rounding": None, "roundng": "cms_total_time"},
     "required key 'rounding' is missing: cms_total_time or cpt_midpoint; unknown key 'roundng' (did you mean "
     "'rounding'?); allowed keys: payer_id, name, kind, claim_filing_codes, effective_from, effective_to, source, "
     "rounding, discipline_modifier, "),
    ({"rounding": "cms_total"}, "key 'rounding': 'cms_total' is not allowed; use 'cms_total_time' or 'cpt_midpoint'"),
    ({"kind": "private"}, "key 'kind': 'private' is not allowed; use 'medicare', 'medicaid' or 'commercial'"),
    ({"corrected_claim": "frequency_7"}, "key 'corrected_claim': 'frequency_7' is not allowed; use 'reopening' or "
                                         "'frequency_7_8'"),
    ({"ncci_program": "both"}, "key 'ncci_program': 'both' is not allowed; use 'medicare' or 'medicaid'"),
    ({"kx_threshold": "no"}, "key 'kx_threshold': 'no' is not true or false"),
    ({"fee_schedule": None}, "required key 'fee_schedule' is missing: a schedule id of fees/schedules.yaml"),
    ({"effective_from": "2025-13-01"}, "key 'effective_from': '2025-13-01' is not a date; write it as YYYY-MM-DD"),
    ({"effective_to": date(2024, 12, 31)}, "effective_to 2024-12-31 is before effective_from 2025-01-01"),
    ({"timely_filing": {"month": 12}}, "unknown key 'timely_filing.month' (did you mean 'months'?); allowed keys "
                                       "of timely_filing: months, days"),
    ({"timely_filing": {"months": 12, "days": 90}}, "key 'timely_filing': {'months': 12, 'days': 90} needs exactly "
                                                    "one of months or days, e.g. {months: 12} or {days: 90}"),
    ({"visit_limits": [{"visits": 20, "period": "rolling_days"}]},
     "key 'visit_limits[1]': {'visits': 20, 'period': 'rolling_days'} needs days (the window length) with period "
     "rolling_days"),
    ({"visit_limits": [{"visits": 20, "period": "year"}]},
     "key 'visit_limits[1].period': 'year' is not allowed; use 'calendar_year' or 'rolling_days'"),
    ({"assistants_covered": ["OTA", "COTA"]},
     "key 'assistants_covered[2]': 'COTA' is not an assistant role of rules/disciplines.yaml; use OTA, PTA, SLPA"),
    ({"claim_filing_codes": ["CX"]}, "key 'claim_filing_codes[1]': 'CX' is not an SBR09 claim filing code (one of "),
    ({"assistant_payment_factor": 85}, "key 'assistant_payment_factor': 85 is not a fraction above 0 and at most 1, "
                                       "such as \"0.85\""),
    ({"prior_auth": {"codes": "all"}}, "key 'prior_auth.codes': 'all' is not \"therapy\" (every therapy code) or a "
                                       "list of CPT/HCPCS codes"),
    ({"dme": {"action": "send"}}, "key 'dme.action': 'send' is not allowed; use 'bill' or 'hold'"),
    ({"plan_of_care": {"certification_days": 90, "signature_within_days": 30, "evaluation_exempt": "yes"}},
     "key 'plan_of_care.evaluation_exempt': 'yes' is not true or false"),
])
def test_payer_file_typo(mappings, change, problem):
    path = edit_payer(mappings, UHC, **change)
    message = payer_error()
    assert message.startswith(f"{path}: {problem}")


def test_shipped_payer_files_read_as_before():
    rules, _ = payer_rules("OHMCD", "MC")
    assert rules.prior_auth.codes == "therapy" and rules.prior_auth.exempt == ("97165", "97166", "97167")
    assert rules.assistants_covered == ("OTA", "PTA") and rules.claim_filing_codes == ("MC",)
    assert rules.effective_to is None and rules.qmb_program is False and rules.dme_note is None
    fallback, _ = payer_rules("99999", "CI")
    assert fallback.claim_filing_codes == ("*",) and fallback.fallback
    assert fallback.timely_filing == TimelyFiling(days=90)


def test_timely_filing_defaults_by_kind_when_a_payer_file_gives_none(mappings):
    edit_payer(mappings, UHC, timely_filing=None)
    assert payer_rules("87726", "CI")[0].timely_filing == TimelyFiling(days=90)  # rules/timely_filing.yaml commercial
