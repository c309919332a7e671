"""Plan-of-care checks for payers that certify therapy plans (Medicare; payer file `plan_of_care`,
`progress_report_days`), per discipline of the visit (each discipline has its own plan and episode).

Certification (MBPM Pub 100-02 ch.15 §220.1.3): treatment is paid under a plan the physician/NPP certified
by a dated signature; the plan covers "the duration of the plan of care, or 90 calendar days from the date
of the initial treatment, whichever is less"; after it, a recertification. A visit is held
- when the plan has no signature date yet (not certified: hold until signed),
- when it falls after the certified-through date or past the 90 days (recertify),
- when it comes before the plan's start.
An evaluation-only visit is not held: it is paid on the referral/order (§220.3.C). A signature dated more
than 30 days after the first treatment is a delayed certification: allowed, with a warning to document the
reason (§220.1.3.D).

Progress reports (§220.3.D): "at least once every 10 treatment days"; the first reporting period begins on
the first day of the episode, whatever the service that day. Treatment days are the dates the patient was
billed for the discipline, counted after the latest progress report (progress_report_date), or from the
plan's start when there is none: the 10th treatment day without a report is warned (the report is due that
day), a later one is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from otedi.charges.record import Charge
from otedi.coding.codes import CodeInfo
from otedi.coding.disciplines import Disciplines, disciplines
from otedi.coding.history import InMemoryHistory
from otedi.coding.payers import PayerRules
from otedi.issues import Issue, Severity

CERTIFICATION_SOURCE = "MBPM Pub 100-02 ch.15 §220.1.3 (certification and recertification of the plan of care)"
PROGRESS_SOURCE = "MBPM Pub 100-02 ch.15 §220.3.D (progress report at least once every 10 treatment days)"


def _by_discipline(billed: Sequence[tuple[Charge, CodeInfo]],
                   table: Disciplines) -> dict[str, list[tuple[Charge, CodeInfo]]]:
    out: dict[str, list[tuple[Charge, CodeInfo]]] = {}
    for c, info in billed:
        out.setdefault(table.of_role(c.rendering_role).name, []).append((c, info))
    return out


def _first(values) -> date | None:
    return next((v for v in values if v is not None), None)


def plan_of_care_issues(billed: Sequence[tuple[Charge, CodeInfo]], payer: PayerRules,
                        table: Disciplines | None = None) -> list[Issue]:
    """(`table`: the discipline rules, when the caller has them at hand; so for progress_report_issues.)"""
    rule = payer.plan_of_care
    issues: list[Issue] = []
    for name, lines in _by_discipline(billed, table or disciplines()).items():
        if rule.evaluation_exempt and all(info.evaluation for _, info in lines):
            continue
        charges = [c for c, _ in lines]
        head, day = charges[0], charges[0].service_date
        start = _first(c.plan_of_care_start or c.initial_treatment_date for c in charges)
        signed = _first(c.plan_of_care_signed_date for c in charges)
        through = _first(c.plan_of_care_certified_through for c in charges)

        def hold(message: str, column: str, value: date | None = None) -> None:
            issues.append(Issue(Severity.HOLD, "plan-of-care", f"{name} visit on {day}: {message}",
                                CERTIFICATION_SOURCE, charge_id=head.charge_id, column=column,
                                value=str(value) if value else None))

        if signed is None:
            hold(f"the {name} plan of care has no certification (plan_of_care_signed_date is empty); {payer.name} "
                 f"pays treatment under a plan the physician/NPP certified by a dated signature - hold until it "
                 f"is signed, then record the date", "plan_of_care_signed_date")
            continue
        if start is not None and day < start:
            hold(f"the visit is before the plan of care starts ({start}); check the dates",
                 "plan_of_care_start", start)
            continue
        if through is not None and day > through:
            hold(f"the certified plan of care ended {through}; a recertification signed by the physician/NPP is "
                 f"needed for visits after it", "plan_of_care_certified_through", through)
            continue
        if start is not None and (day - start).days >= rule.certification_days:
            hold(f"{(day - start).days + 1} days after the plan's start ({start}): a certification covers at most "
                 f"{rule.certification_days} calendar days from the initial treatment; recertify the plan",
                 "plan_of_care_start", start)
            continue
        if start is not None and (signed - start).days > rule.signature_within_days:
            issues.append(Issue(
                Severity.WARNING, "plan-of-care",
                f"{name} visit on {day}: the plan was certified on {signed}, more than "
                f"{rule.signature_within_days} days after its start ({start}): a delayed certification - keep "
                f"the reason for the delay with the plan", CERTIFICATION_SOURCE, charge_id=head.charge_id,
                column="plan_of_care_signed_date", value=str(signed)))
    return issues


def progress_report_issues(billed: Sequence[tuple[Charge, CodeInfo]], payer: PayerRules,
                           history: InMemoryHistory, table: Disciplines | None = None) -> list[Issue]:
    every = payer.progress_report_days
    issues: list[Issue] = []
    table = table or disciplines()
    for name, lines in _by_discipline(billed, table).items():
        charges = [c for c, _ in lines]
        head, day = charges[0], charges[0].service_date
        report = max((c.progress_report_date for c in charges if c.progress_report_date), default=None)
        start = _first(c.plan_of_care_start or c.initial_treatment_date for c in charges)
        if report is None and start is None:
            continue  # no episode start to count from
        after = report if report is not None else start - timedelta(days=1)
        if after >= day:
            continue  # the report was written at this visit
        days = len(history.treatment_dates(head.patient_id, name, after, day)) + 1
        since = f"the progress report of {report}" if report else f"the start of the episode ({start})"
        if days == every:
            issues.append(Issue(
                Severity.WARNING, "progress-report",
                f"{name} visit on {day} is treatment day {days} since {since}: a progress report by the "
                f"{table.by_name[name].therapist.role} is due today", PROGRESS_SOURCE,
                charge_id=head.charge_id, column="progress_report_date", value=str(report) if report else None))
        elif days > every:
            issues.append(Issue(
                Severity.HOLD, "progress-report",
                f"{name} visit on {day} is treatment day {days} since {since}, past the {every}-treatment-day "
                f"limit: write the progress report (or record its date in progress_report_date) before billing",
                PROGRESS_SOURCE, charge_id=head.charge_id, column="progress_report_date",
                value=str(report) if report else None))
    return issues
