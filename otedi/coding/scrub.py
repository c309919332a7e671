"""Scrub one visit: the charges of one patient, payer, practice and date of service.

Steps, in order: code set and Medicare status -> units (payer's rounding) ->
expected allowed amounts (fee schedule, MPPR, CO) -> KX -> modifiers ->
charge amount for the billed units -> NCCI PTP/MUE/AOC -> payer rules
(prior authorization, visit limits, timely filing).

Nothing here changes the history: the caller records the visit with
`history.record_visit(result)` once the claim is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from otedi import config
from otedi.charges.record import Charge
from otedi.coding import modifiers as mods
from otedi.coding.codes import CODE_TABLE, CodeInfo, lookup
from otedi.coding.fees import FeeSchedule, PricingLine, fee_schedule, price_lines
from otedi.coding.history import InMemoryHistory
from otedi.coding.ncci import aoc_issues, mue_issues, ptp_issues
from otedi.coding.payers import PayerRules, payer_rules, timely_filing_issue, visit_limit_issues
from otedi.coding.result import CodedLine
from otedi.coding.units import assign_units
from otedi.issues import Issue, Severity

HOSPITAL_SETTING_RULE = "rules/therapy_setting.yaml"
UNPAID_MEDICARE_STATUS = {
    "B": "bundled: Medicare does not pay it separately",
    "I": "not valid for Medicare",
}


@dataclass(frozen=True)
class VisitResult:
    lines: list[CodedLine]  # billable lines, in charting order
    issues: list[Issue]
    payer: PayerRules  # the rules applied (a fallback profile for an unknown payer id)

    @property
    def held(self) -> bool:
        """True when the claim must be reviewed before it is sent."""
        return any(i.severity == Severity.HOLD for i in self.issues)

    @property
    def rejected(self) -> set[str]:
        """charge_ids that are not billed."""
        return {i.charge_id for i in self.issues if i.severity == Severity.REJECT}


def scrub_visit(charges: Sequence[Charge], history: InMemoryHistory, *, today: date) -> VisitResult:
    _check_one_visit(charges)
    first = charges[0]
    dos = first.service_date
    payer, warning = payer_rules(first.payer_id, first.claim_filing_code, dos)
    issues: list[Issue] = [replace(warning, charge_id=first.charge_id)] if warning else []

    valid: list[tuple[Charge, CodeInfo]] = []
    for c in charges:
        info, problem = _check_code(c, payer)
        if problem:
            issues.append(problem)
        else:
            valid.append((c, info))

    assigned = assign_units([c for c, _ in valid], payer.rounding)
    issues += assigned.issues
    billed = [(c, info) for c, info in valid if assigned.units[c.charge_id] > 0]
    units = {c.charge_id: assigned.units[c.charge_id] for c, _ in billed}
    if not billed:
        return VisitResult([], issues, payer)

    schedule, warning = fee_schedule(payer.fee_schedule, dos)
    if warning:
        issues.append(replace(warning, charge_id=billed[0][0].charge_id))
    allowed, fee_issues = price_lines(
        [PricingLine(c.charge_id, c.cpt, units[c.charge_id], mods.is_assistant_line(c, payer)) for c, _ in billed],
        schedule, payer.assistant_payment_factor)
    issues += fee_issues

    kx: set[str] = set()
    if payer.kx_threshold:
        go_lines = [(c, allowed[c.charge_id]) for c, info in billed if _carries_go(c, info, payer)]
        if go_lines:
            incurred = history.ot_incurred(first.patient_id, dos, exclude={c.charge_id for c in charges})
            kx, kx_issues = mods.assign_kx(go_lines, incurred, dos)
            issues += kx_issues

    lines: list[CodedLine] = []
    for c, info in billed:
        final, mod_issues = mods.line_modifiers(c, info, payer, kx=c.charge_id in kx)
        issues += mod_issues
        amount, unit_issue = _charge_for_units(c, units[c.charge_id])
        if unit_issue:
            issues.append(unit_issue)
        lines.append(CodedLine(c, units[c.charge_id], final, amount, allowed[c.charge_id]))

    if payer.ncci_ptp:
        issues += ptp_issues(lines, modifier_on_either_column=payer.ncci_modifier_either_column)
    if payer.ncci_mue:
        issues += mue_issues(lines)
    issues += aoc_issues(lines)

    issues += _prior_auth_issues(billed, payer)
    issues += _hospital_setting_issues(billed, payer, schedule)
    head = lines[0].charge.charge_id
    if payer.visit_limits:
        windows = [limit.window(dos) for limit in payer.visit_limits]
        seen = history.visit_dates(first.patient_id, first.payer_id, min(w[0] for w in windows),
                                   max(w[1] for w in windows), exclude={c.charge_id for c in charges})
        issues += visit_limit_issues(payer, seen, dos, head)
    filing = timely_filing_issue(payer, dos, today, head)
    if filing:
        issues.append(filing)
    return VisitResult(lines, issues, payer)


def _check_one_visit(charges: Sequence[Charge]) -> None:
    if not charges:
        raise ValueError("scrub_visit needs at least one charge")
    keys = {(c.patient_id, c.payer_id, c.practice_id, c.service_date) for c in charges}
    if len(keys) > 1:
        raise ValueError("scrub_visit takes one patient, payer, practice and date of service; got "
                         f"{len(keys)} combinations (charges {', '.join(c.charge_id for c in charges)})")


def _check_code(c: Charge, payer: PayerRules) -> tuple[CodeInfo | None, Issue | None]:
    info = lookup(c.cpt)
    source = f"mappings/{CODE_TABLE}"
    if info is None:
        return None, Issue(Severity.REJECT, "code-set",
                           f"cpt {c.cpt} on {c.service_date} is not in the OT code table; correct the code or add it "
                           f"to {CODE_TABLE}", source, charge_id=c.charge_id, column="cpt", value=c.cpt)
    if not info.valid_on(c.service_date):
        instead = f"; bill {info.replaced_by}" if info.replaced_by else ""
        return info, Issue(Severity.REJECT, "code-set",
                           f"cpt {c.cpt} is not valid on {c.service_date} (valid {info.effective_from} to "
                           f"{info.effective_to or 'open'}){instead}", info.source,
                           charge_id=c.charge_id, column="cpt", value=c.cpt)
    if payer.medicare_status_edits and info.medicare_status in UNPAID_MEDICARE_STATUS:
        instead = f"; bill {info.replaced_by}" if info.replaced_by else "; do not bill it to Medicare"
        return info, Issue(Severity.REJECT, "medicare-status",
                           f"cpt {c.cpt} on {c.service_date} has Medicare status {info.medicare_status} "
                           f"({UNPAID_MEDICARE_STATUS[info.medicare_status]}){instead}", info.source,
                           charge_id=c.charge_id, column="cpt", value=c.cpt)
    return info, None


def _carries_go(c: Charge, info: CodeInfo, payer: PayerRules) -> bool:
    charted_go = any(m.strip().upper() == "GO" for m in c.modifiers)
    return charted_go or (info.is_therapy and payer.discipline_modifier)


def _charge_for_units(c: Charge, billed: int) -> tuple[Decimal, Issue | None]:
    """SV102 for the billed units: the charge per charted unit times billed units."""
    if not c.units or c.units == billed:
        return c.charge_amount, None
    amount = (c.charge_amount / c.units * billed).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return amount, Issue(
        Severity.WARNING, "units-changed",
        f"{c.cpt} on {c.service_date}: charted {c.units} unit(s), billed {billed} ({c.minutes} min); "
        f"charge changed from ${c.charge_amount} to ${amount}", "otedi.coding.units (payer rounding method)",
        charge_id=c.charge_id, column="units", value=str(billed))


@lru_cache(maxsize=4)
def _hospital_setting_rule(root: str) -> dict:
    return config.load_yaml(HOSPITAL_SETTING_RULE)


def _hospital_setting_issues(billed: Sequence[tuple[Charge, CodeInfo]], payer: PayerRules,
                             schedule: FeeSchedule) -> list[Issue]:
    """PCTC-7 therapy codes billed by the practice for a patient in a hospital setting (see the rule file)."""
    rule = _hospital_setting_rule(str(config.mappings_dir()))
    if payer.kind not in rule["payer_kinds"]:
        return []
    return [Issue(
        Severity.HOLD, rule["rule"],
        f"{c.cpt} on {c.service_date} at place of service {c.place_of_service}: a therapist in private practice "
        f"cannot bill {payer.name} for this code in a hospital setting (PC/TC indicator 7); the hospital bills it on "
        f"an 837I. Check the place of service, or route the charge to the hospital",
        f"mappings/{HOSPITAL_SETTING_RULE}", charge_id=c.charge_id, column="place_of_service", value=c.place_of_service)
        for c, _ in billed
        if c.place_of_service in rule["places_of_service"]
        and (rate := schedule.pfs.get(c.cpt)) is not None and rate.pctc == rule["pctc_indicator"]]


def _prior_auth_issues(billed: Sequence[tuple[Charge, CodeInfo]], payer: PayerRules) -> list[Issue]:
    if payer.prior_auth is None:
        return []
    return [Issue(
        Severity.HOLD, "prior-auth",
        f"{c.cpt} on {c.service_date}: {payer.name} requires prior authorization for this code and the charge "
        f"has no authorization number; obtain or record the authorization (REF*G1) before billing",
        f"mappings/payers/{payer.file}", charge_id=c.charge_id, column="prior_auth_number")
        for c, info in billed
        if payer.prior_auth.required_for(c.cpt, info.is_therapy) and not (c.prior_auth_number or "").strip()]
