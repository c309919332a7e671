"""Plan-of-care certification and progress reports for Medicare (MBPM Pub 100-02 ch.15 §220.1.3, §220.3).

§220.1.3: the plan covers "the duration of the plan of care, or 90 calendar days from the date of the initial
treatment, whichever is less. The initial treatment includes the evaluation"; timely certification is signed
"in the 30 days following the first day of treatment"; delayed certification is allowed. §220.3.C: an
evaluation is paid on the referral/order. §220.3.D: "at least once every 10 treatment days. The day beginning
the first reporting period is the first day of the episode of treatment".
"""

from dataclasses import replace
from datetime import date, timedelta

import pytest

from otedi.coding.history import InMemoryHistory
from otedi.coding.scrub import scrub_visit
from otedi.issues import Severity
from tests.test_scrub import TODAY, UHC, charge, rules_of

START = date(2026, 2, 16)


def visit(day: date, **kw):
    return charge("C1", "97530", 30, service_date=day, plan_of_care_start=START,
                  plan_of_care_signed_date=START + timedelta(days=2),
                  plan_of_care_certified_through=START + timedelta(days=89), **kw)


def holds(result):
    return [i.rule for i in result.issues if i.severity is Severity.HOLD]


def test_visit_inside_a_certified_plan_is_not_held():
    assert holds(scrub_visit([visit(date(2026, 3, 2))], InMemoryHistory(), today=TODAY)) == []


def test_unsigned_plan_holds_treatment_but_not_the_evaluation():
    unsigned = replace(visit(date(2026, 3, 2)), plan_of_care_signed_date=None)
    result = scrub_visit([unsigned], InMemoryHistory(), today=TODAY)
    assert holds(result) == ["plan-of-care"] and "no certification" in result.issues[0].message
    assert "MBPM Pub 100-02 ch.15 §220.1.3" in result.issues[0].source
    evaluation = replace(unsigned, cpt="97166", minutes=None, units=1, service_date=START)
    assert holds(scrub_visit([evaluation], InMemoryHistory(), today=TODAY)) == []


def test_visit_after_the_certified_period_needs_a_recertification():
    late = replace(visit(date(2026, 4, 20)), plan_of_care_certified_through=date(2026, 4, 15))
    result = scrub_visit([late], InMemoryHistory(), today=date(2026, 4, 21))
    assert holds(result) == ["plan-of-care"] and "recertification" in result.issues[0].message


@pytest.mark.parametrize("day, held", [(START + timedelta(days=89), False), (START + timedelta(days=90), True)])
def test_certification_covers_at_most_90_days_from_the_initial_treatment(day, held):
    long_plan = replace(visit(day), plan_of_care_certified_through=START + timedelta(days=120))
    result = scrub_visit([long_plan], InMemoryHistory(), today=day + timedelta(days=1))
    assert (holds(result) == ["plan-of-care"]) is held


def test_delayed_certification_is_a_warning():
    delayed = replace(visit(date(2026, 3, 30)), plan_of_care_signed_date=START + timedelta(days=35))
    result = scrub_visit([delayed], InMemoryHistory(), today=date(2026, 3, 31))
    assert holds(result) == [] and ("C1", "plan-of-care") in rules_of(result, Severity.WARNING)


def test_commercial_payer_has_no_plan_of_care_rule():
    unsigned = replace(visit(date(2026, 3, 2), **UHC), plan_of_care_signed_date=None)
    assert holds(scrub_visit([unsigned], InMemoryHistory(), today=TODAY)) == []


def _history_of(days: list[date], discipline="OT") -> InMemoryHistory:
    history = InMemoryHistory()
    for n, day in enumerate(days):
        history.record(charge_id=f"H{n}", patient_id="P1", payer_id="15202", payer_kind="medicare",
                       service_date=day, cpt="97530", modifiers=("GO",), expected_allowed=None, discipline=discipline)
    return history


TREATMENT_DAYS = [START + timedelta(days=2 * n) for n in range(12)]  # day 1 = the start of the episode


@pytest.mark.parametrize("day_number, expected", [(9, None), (10, Severity.WARNING), (11, Severity.HOLD)])
def test_progress_report_every_10_treatment_days(day_number, expected):
    day = TREATMENT_DAYS[day_number - 1]
    result = scrub_visit([visit(day)], _history_of(TREATMENT_DAYS[:day_number - 1]), today=day)
    found = [i.severity for i in result.issues if i.rule == "progress-report"]
    assert found == ([] if expected is None else [expected])
    if expected is Severity.HOLD:
        assert "treatment day 11" in next(i.message for i in result.issues if i.rule == "progress-report")


def test_progress_report_restarts_the_count_and_other_disciplines_do_not_count():
    day = TREATMENT_DAYS[10]
    reported = visit(day, progress_report_date=TREATMENT_DAYS[9])  # written on the 10th treatment day
    assert not [i for i in scrub_visit([reported], _history_of(TREATMENT_DAYS[:10]), today=day).issues
                if i.rule == "progress-report"]
    # 10 earlier PT days do not make this OT visit the 11th OT treatment day
    pt_days = scrub_visit([visit(day)], _history_of(TREATMENT_DAYS[:10], discipline="PT"), today=day)
    assert not [i for i in pt_days.issues if i.rule == "progress-report"]
