"""OT beside PT and SLP: each discipline's codes, modifiers, 8-minute pool and KX bucket.

Sources: CMS CR 10176 / WPS therapy modifiers (GO/GP/GN by plan of care), BBA 2018 §50202 (one KX threshold
for OT, a separate one for PT and SLP combined), MCPM Pub 100-04 ch.5 §20.2 (total-time units). Pooling the
timed minutes per discipline is a judgement: MCPM §20.2 counts "the total number of minutes" of timed
services on the day without naming disciplines; we follow MBPM Pub 100-02 ch.15, under which each
discipline has its own plan of care and episode ("by one therapy discipline"), and its own claims (GO vs
GP lines, each discipline's own rendering therapist).
"""

from dataclasses import replace
from datetime import date
from decimal import Decimal

from otedi.coding.history import ExternalUsage, InMemoryHistory
from otedi.coding.scrub import scrub_visit
from otedi.issues import Severity
from tests.test_scrub import DOS, TODAY, charge, rules_of

PT = dict(rendering_role="PT", rendering_npi="1326041245", rendering_last_name="PRICE", rendering_first_name="ADAM")
SLP = dict(rendering_role="SLP", rendering_npi="1144201237", rendering_last_name="VOSS", rendering_first_name="IDA")


def test_pt_lines_get_gp_and_slp_lines_gn():
    result = scrub_visit([charge("C1", "97161", units=1, **PT), charge("C2", "97110", 20, **PT),
                          charge("C3", "92507", units=1, **SLP)], InMemoryHistory(), today=TODAY)
    assert [(ln.charge.charge_id, ln.modifiers) for ln in result.lines] == [
        ("C1", ("GP",)), ("C2", ("GP",)), ("C3", ("GN",))]
    assert not result.held and not result.rejected


def test_code_of_another_discipline_is_rejected():
    result = scrub_visit([charge("C1", "97161", units=1), charge("C2", "97165", units=1, **PT)],
                         InMemoryHistory(), today=TODAY)
    assert rules_of(result, Severity.REJECT) == [("C1", "code-discipline"), ("C2", "code-discipline")]
    assert "PT" in result.issues[0].message and "OT" in result.issues[1].message


def test_timed_minutes_pool_per_discipline_never_across():
    # OT 10 min 97110 and PT 10 min 97110 on one day: each discipline's 10 minutes earn a unit (8-22 min);
    # pooled across disciplines they would be one unit for 20 minutes.
    result = scrub_visit([charge("C1", "97110", 10), charge("C2", "97110", 10, **PT)], InMemoryHistory(),
                         today=TODAY)
    assert [(ln.charge.charge_id, ln.units, ln.modifiers) for ln in result.lines] == [
        ("C1", 1, ("GO",)), ("C2", 1, ("GP",))]
    # within one discipline the CMS total-time rule still pools: 7 + 7 minutes = 1 unit of either
    ot_only = scrub_visit([charge("C1", "97110", 7), charge("C2", "97140", 7)], InMemoryHistory(), today=TODAY)
    assert [(ln.cpt, ln.units) for ln in ot_only.lines] == [("97110", 1)]


def test_pt_and_ot_lines_go_to_their_own_rendering_provider():
    result = scrub_visit([charge("C1", "97530", 30), charge("C2", "97110", 30, **PT)], InMemoryHistory(),
                         today=TODAY)
    assert {ln.charge.charge_id: (ln.rendering.npi, ln.rendering.taxonomy) for ln in result.lines} == {
        "C1": ("1234567893", "225X00000X"), "C2": ("1326041245", "225100000X")}


def test_kx_buckets_are_separate_for_ot_and_pt_slp():
    history = InMemoryHistory()
    history.record(charge_id="OLD-PT", patient_id="P1", payer_id="15202", payer_kind="medicare",
                   service_date=date(2026, 2, 2), cpt="97110", modifiers=("GP",), expected_allowed=Decimal("2470.00"))
    assert history.incurred("P1", "PT_SLP", DOS) == Decimal("2470.00")
    assert history.incurred("P1", "OT", DOS) == Decimal("0.00")
    result = scrub_visit([charge("C1", "97530", 15), charge("C2", "97110", 15, **PT)], history, today=TODAY)
    mods = {ln.charge.charge_id: ln.modifiers for ln in result.lines}
    # PT crosses the $2,480 CY2026 threshold ($2,470 + $29.06), OT ($35.07 this year) does not
    assert mods == {"C1": ("GO",), "C2": ("GP", "KX")}


def test_kx_counts_therapy_used_at_other_providers():
    history = InMemoryHistory()
    history.add_external("P1", ExternalUsage(2026, "OT", Decimal("2460.00"), date(2026, 2, 20)))
    history.add_external("P1", ExternalUsage(2026, "OT", Decimal("1000.00"), date(2026, 1, 20)))  # older report
    history.add_external("P1", ExternalUsage(2026, "OT", Decimal("9000.00"), date(2026, 4, 1)))  # after the visit
    assert history.incurred("P1", "OT", DOS) == Decimal("2460.00")  # the latest report up to the visit
    result = scrub_visit([charge("C1", "97530", 15)], history, today=TODAY)
    assert result.lines[0].modifiers == ("GO", "KX")


def test_medical_review_threshold_warns_once_when_crossed():
    history = InMemoryHistory()
    history.add_external("P1", ExternalUsage(2026, "OT", Decimal("2990.00"), date(2026, 2, 20)))
    result = scrub_visit([charge("C1", "97530", 15), charge("C2", "97535", 15)], history, today=TODAY)
    review = [i for i in result.issues if i.rule == "medical-review-threshold"]
    assert [(i.charge_id, i.severity) for i in review] == [("C1", Severity.WARNING)]
    assert "$3,000.00 targeted medical review threshold" in review[0].message
    assert all("KX" in ln.modifiers for ln in result.lines)  # KX still applies past $3,000


def test_unlisted_code_is_held_for_documentation_and_dme_item_for_the_dme_mac():
    result = scrub_visit([charge("C1", "97799", units=1), charge("C2", "L3808", units=1), charge("C3", "97530", 15)],
                         InMemoryHistory(), today=TODAY)
    assert rules_of(result, Severity.HOLD) == [("C1", "unlisted-code"), ("C2", "dme-payer")]
    commercial = scrub_visit([replace(charge("C2", "L3808", units=1), payer_id="87726", payer_name="UHC",
                                      claim_filing_code="CI")], InMemoryHistory(), today=TODAY)
    assert "dme-payer" not in {i.rule for i in commercial.issues}


def test_deleted_cognitive_codes_name_their_replacement():
    result = scrub_visit([charge("C1", "97532", 15), charge("C2", "G0515", 15)], InMemoryHistory(), today=TODAY)
    assert rules_of(result, Severity.REJECT) == [("C1", "code-set"), ("C2", "code-set")]
    assert all("97129" in i.message and "97130" in i.message for i in result.issues)
