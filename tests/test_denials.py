"""Denial root causes (group + CARC + RARC), Pareto, trend, rate and recoverable dollars."""

from datetime import date
from decimal import Decimal as D

import pytest

from otedi.analytics import denial_detail, denial_pareto, denial_trend
from otedi.analytics.categories import category_map, classify
from tests.test_reconcile import TODAY, finance  # noqa: F401 - finance is a fixture

ISSUE_CATEGORIES = {"coding", "authorization", "eligibility", "documentation", "timely_filing", "duplicate",
                    "bundling", "units", "benefit_maximum", "contractual", "patient_responsibility"}


@pytest.mark.parametrize("group, carc, rarc, category", [
    ("CO", "16", "M62", "authorization"),  # CO-16's cause is in its RARC
    ("CO", "16", "N290", "credentialing"),
    ("CO", "16", "MA130:M77", "coding"),
    ("CO", "16", None, "coding"),
    ("CO", "151", "N362", "units"),  # MUE
    ("CO", "151", None, "documentation"),  # medical review of frequency
    ("PR", "119", None, "benefit_maximum"),  # therapy threshold without KX
    ("CO", "119", None, "benefit_maximum"),
    ("PR", "2", None, "patient_responsibility"),
    ("PR", "50", None, "patient_responsibility"),  # with an ABN the patient pays
    ("CO", "50", "N115", "documentation"),
    ("CO", "45", None, "contractual"),
    ("CO", "253", None, "contractual"),
    ("CO", "236", None, "bundling"),
    ("CO", "197", None, "authorization"),
    ("CO", "29", None, "timely_filing"),
    ("OA", "18", None, "duplicate"),
    ("CO", "96", "N130", "eligibility"),
    ("CO", "4", None, "coding"),
    ("CO", "999", None, "other"),
])
def test_root_cause_depends_on_group_carc_and_rarc(group, carc, rarc, category):
    assert classify(group, carc, rarc).category == category


def test_every_category_of_the_issue_has_a_fix_and_the_file_names_its_sources():
    categories = category_map().categories
    assert ISSUE_CATEGORIES <= set(categories)
    assert all(len(c.fix) > 40 for c in categories.values())
    assert not categories["timely_filing"].correctable and categories["bundling"].correctable
    assert "CO-16 with N290" not in classify("CO", "16", "N290").fix and "NPI" in classify("CO", "16", "N290").fix


def test_denials_pareto_trend_and_recoverable_dollars(finance):
    detail = denial_detail(today=TODAY)
    assert sorted(zip(detail["carc"], detail["category"], detail["denied"], detail["recoverable_amount"])) == [
        ("197", "authorization", D("65.00"), D("65.00")), ("236", "bundling", D("65.00"), D("65.00")),
        ("29", "timely_filing", D("65.00"), D("0.00"))]  # CO-29 cannot be corrected
    assert detail["recoverable_amount"].sum() == D("130.00")
    assert set(detail["filing_deadline"]) == {date(2027, 3, 3), date(2027, 3, 4), date(2027, 3, 5)}
    # past the Medicare 12-month limit nothing is recoverable any more
    assert denial_detail(today=date(2027, 3, 6))["recoverable_amount"].sum() == D("0.00")

    pareto = denial_pareto(today=TODAY)
    category = pareto[pareto["dimension"] == "category"]
    assert list(zip(category["value"], category["denied"], category["share"], category["cumulative_share"])) == [
        ("authorization", D("65.00"), D("0.3333"), D("0.3333")), ("bundling", D("65.00"), D("0.3333"), D("0.6667")),
        ("timely_filing", D("65.00"), D("0.3333"), D("1.0000"))]
    cpt = pareto[pareto["dimension"] == "cpt"]
    assert list(zip(cpt["value"], cpt["denied"], cpt["lines"])) == [("97110", D("130.00"), 2), ("97535", D("65.00"), 1)]
    payer = pareto[pareto["dimension"] == "payer"].iloc[0]
    assert (payer["value"], payer["label"], payer["denied"]) == ("15202", "CGS MEDICARE PART B OHIO", D("195.00"))
    provider = pareto[pareto["dimension"] == "rendering_provider"].iloc[0]
    assert (provider["value"], provider["claims"]) == ("1678901236", 3)

    [month] = denial_trend(today=TODAY).to_dict("records")
    # adjudicated: A, B, C, D, H (E's payment was reversed); denied: B, C, D; billed 745.00
    assert (month["month"], month["adjudicated_claims"], month["denied_claims"], month["billed"], month["denied"],
            month["claim_rate"], month["dollar_rate"]) == ("2026-03", 5, 3, D("745.00"), D("195.00"), D("0.6000"),
                                                           D("0.2617"))
