"""Scrub one visit: the charges of one patient, payer, practice and date of service.

Steps, in order: code set and Medicare status, the discipline and assistant
rules (who may bill the code, supervising therapist, unlisted and DMEPOS
codes) -> units (payer's rounding, pooled per discipline; de minimis split
between therapist and assistant) -> expected allowed amounts (fee schedule
at the practice's locality, MPPR, CO/CQ) -> KX per bucket (OT; PT+SLP) ->
modifiers -> charge amount for the billed units -> NCCI PTP/MUE/AOC (the
payer's program) -> payer rules (prior authorization, hospital setting,
plan of care and progress reports, visit limits, timely filing).

Nothing here changes the history: the caller records the visit with
`history.record_visit(result)` once the claim is sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from otedi.charges.record import Charge
from otedi.coding import modifiers as mods
from otedi.coding.assistants import billed_rendering
from otedi.coding.codes import CODE_TABLE, CodeInfo, CodeTable
from otedi.coding.disciplines import Disciplines
from otedi.coding.fees import FeeSchedule, PricingLine, price_lines
from otedi.coding.history import InMemoryHistory
from otedi.coding.ncci import aoc_issues, mue_issues, ptp_issues
from otedi.coding.payers import PayerRules, timely_filing_issue, visit_limit_issues
from otedi.coding.plan_of_care import plan_of_care_issues, progress_report_issues
from otedi.coding.result import CodedLine
from otedi.coding.rulebook import HOSPITAL_SETTING_RULE, Rulebook
from otedi.coding.units import assign_units
from otedi.issues import Issue, Severity

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


def scrub_visit(charges: Sequence[Charge], history: InMemoryHistory, *, today: date,
                locality: str | None = None, rules: Rulebook | None = None) -> VisitResult:
    """Code one visit. `locality` is the practice's Medicare locality (GPCI pricing; None: national).
    `rules`: the build's Rulebook (one per build: the rules are read once; default, read now)."""
    _check_one_visit(charges)
    book = rules or Rulebook()
    table = book.disciplines
    first = charges[0]
    dos = first.service_date
    payer, warning = book.payer(first.payer_id, first.claim_filing_code, dos)
    issues: list[Issue] = [replace(warning, charge_id=first.charge_id)] if warning else []

    valid: list[tuple[Charge, CodeInfo]] = []
    for c in charges:
        info, problems = _check_charge(c, payer, book)
        issues += problems
        if not any(p.severity is Severity.REJECT for p in problems):
            valid.append((c, info))

    # Who each line is billed under (2310B); a merged line keeps the rendering of the row it is kept on.
    rendering = {c.charge_id: billed_rendering(c, payer.assistants_render, table) for c, _ in valid}
    # The 8-minute rule pools timed minutes per discipline (each has its own plan of care) and billed provider.
    pools: dict[tuple[str, str], list[Charge]] = defaultdict(list)
    for c, _ in valid:
        pools[(table.of_role(c.rendering_role).name, rendering[c.charge_id].npi)].append(c)
    units: dict[str, int] = {}
    merged: dict[str, str] = {}
    for pool in pools.values():
        assigned = assign_units(pool, payer.rounding, book.codes, table)
        issues += assigned.issues
        units.update(assigned.units)
        merged.update(assigned.merged)
    on_line = {keep: [c for c, _ in valid if merged.get(c.charge_id) == keep] for keep in set(merged.values())}
    billed = [(_combined(c, on_line.get(c.charge_id, [])), info) for c, info in valid if units[c.charge_id] > 0]
    if not billed:
        return VisitResult([], issues, payer)

    schedule, warning = book.fee_schedule(payer.fee_schedule, dos, locality)
    if warning:
        issues.append(replace(warning, charge_id=billed[0][0].charge_id))
    allowed, fee_issues = price_lines(
        [PricingLine(c.charge_id, c.cpt, units[c.charge_id], mods.is_assistant_line(c, payer, book.modifiers, table))
         for c, _ in billed],
        schedule, payer.assistant_payment_factor)
    issues += fee_issues

    kx: set[str] = set()
    if payer.kx_threshold:
        excluded = {c.charge_id for c in charges}
        for bucket in sorted({table.of_role(c.rendering_role).kx_bucket for c, _ in billed}):
            bucket_lines = [(c, allowed[c.charge_id]) for c, info in billed
                            if _carries_discipline_modifier(c, info, payer, table)
                            and table.of_role(c.rendering_role).kx_bucket == bucket]
            if bucket_lines:
                incurred = history.incurred(first.patient_id, bucket, dos, exclude=excluded)
                got, kx_issues = mods.assign_kx(bucket_lines, incurred, dos, bucket, book.kx)
                kx |= got
                issues += kx_issues

    lines: list[CodedLine] = []
    for c, info in billed:
        final, mod_issues = mods.line_modifiers(c, info, payer, kx=c.charge_id in kx, rules=book.modifiers,
                                                table=table)
        issues += mod_issues
        amount, unit_issue = _charge_for_units(c, units[c.charge_id])
        if unit_issue:
            issues.append(unit_issue)
        lines.append(CodedLine(c, units[c.charge_id], final, amount, allowed[c.charge_id],
                               rendering=rendering[c.charge_id],
                               merged_charge_ids=tuple(m.charge_id for m in on_line.get(c.charge_id, []))))

    edits = book.ncci(payer.ncci_program)
    if payer.ncci_ptp:
        issues += ptp_issues(lines, modifier_on_either_column=payer.ncci_modifier_either_column,
                             program=payer.ncci_program, tables=edits, rules=book.modifiers)
    if payer.ncci_mue:
        issues += mue_issues(lines, program=payer.ncci_program, tables=edits)
    issues += aoc_issues(lines, program=payer.ncci_program, tables=edits)

    issues += _prior_auth_issues(billed, payer)
    issues += _hospital_setting_issues(billed, payer, schedule, book.hospital_setting)
    if payer.plan_of_care:
        issues += plan_of_care_issues(billed, payer, table)
    if payer.progress_report_days:
        issues += progress_report_issues(billed, payer, history, table)
    head = lines[0].charge.charge_id
    if payer.visit_limits:
        windows = [limit.window(dos) for limit in payer.visit_limits]
        seen = history.visit_dates(first.patient_id, first.payer_id, min(w[0] for w in windows),
                                   max(w[1] for w in windows), exclude={c.charge_id for c in charges})
        issues += visit_limit_issues(payer, seen, dos, head)
    filing = timely_filing_issue(payer, dos, today, head, book.timely_filing_warn_days)
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


def _check_charge(c: Charge, payer: PayerRules, book: Rulebook) -> tuple[CodeInfo | None, list[Issue]]:
    """The charge's code and who furnished it, against the code table and the payer's rules."""
    info, problem = _check_code(c, payer, book.codes)
    if problem:
        return info, [problem]
    issues = []
    discipline = book.disciplines.of_role(c.rendering_role)
    role = book.disciplines.role(c.rendering_role)
    source = f"mappings/{CODE_TABLE}"

    def reject(rule: str, column: str, message: str, src: str) -> None:
        issues.append(Issue(Severity.REJECT, rule, f"{c.cpt} on {c.service_date}: {message}", src,
                            charge_id=c.charge_id, column=column, value=getattr(c, column)))

    if discipline.name not in info.disciplines:
        reject("code-discipline", "cpt",
               f"{info.description} is billed by {'/'.join(sorted(info.disciplines))}, not under the "
               f"{c.rendering_role}'s {discipline.name} plan of care; chart the code of the discipline that "
               f"furnished it", source)
    if role.assistant:
        where = f"mappings/payers/{payer.file}"
        if info.evaluation:
            reject("assistant-evaluation", "cpt",
                   f"an {role.role} does not furnish evaluations or re-evaluations; the {discipline.therapist.role} "
                   f"bills the evaluation under their own NPI",
                   "MBPM Pub 100-02 ch.15 §230.1-230.2 (assistants may not evaluate); UHC PT/OT policy")
        elif role.role not in payer.assistants_covered:
            reject("assistant-not-covered", "rendering_role",
                   f"{payer.name} does not pay for services furnished by an {role.role} "
                   f"(covered assistants: {', '.join(payer.assistants_covered) or 'none'}); the service cannot be "
                   f"billed to this payer", f"{where}; MBPM Pub 100-02 ch.15 §230.3.C (SLP assistants)")
        elif not payer.assistants_render and not c.supervising_npi:
            reject("supervising-required", "supervising_npi",
                   f"{payer.name} does not take an {role.role} as rendering provider: the claim names the "
                   f"supervising {discipline.therapist.role} in 2310B, and supervising_npi is empty; add the "
                   f"supervising therapist to the charge", f"{where}; MBPM Pub 100-02 ch.15 §230.5")
    if issues:
        return info, issues
    if info.needs_documentation:
        issues.append(Issue(
            Severity.HOLD, "unlisted-code",
            f"{c.cpt} on {c.service_date} is an unlisted code: the payer prices it from a description of the "
            f"service and the treatment note; add the description and attach the documentation (PWK) before "
            f"release", info.source, charge_id=c.charge_id, column="cpt", value=c.cpt))
    if info.dme and payer.dme == "hold":
        issues.append(Issue(
            Severity.HOLD, "dme-payer",
            f"{c.cpt} on {c.service_date} is a DMEPOS item: {payer.name} does not pay it on this claim; bill it to "
            f"{payer.dme_note or 'the DME MAC'}, or remove it from this claim",
            f"mappings/payers/{payer.file} (dme); ot_billing_rules.md §1.3", charge_id=c.charge_id,
            column="cpt", value=c.cpt))
    return info, issues


def _combined(keep: Charge, others: Sequence[Charge]) -> Charge:
    """One line's charge: the first row with the minutes, charted units and charges of the rows merged into it."""
    if not others:
        return keep
    rows = [keep, *others]
    units = sum(r.units for r in rows) if all(r.units for r in rows) else None
    return replace(keep, minutes=sum(r.minutes or 0 for r in rows) or None, units=units,
                   charge_amount=sum((r.charge_amount for r in rows), Decimal("0.00")))


def _check_code(c: Charge, payer: PayerRules, codes: CodeTable) -> tuple[CodeInfo | None, Issue | None]:
    info = codes.lookup(c.cpt)
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


def _carries_discipline_modifier(c: Charge, info: CodeInfo, payer: PayerRules, table: Disciplines) -> bool:
    charted = table.of_role(c.rendering_role).modifier in {m.strip().upper() for m in c.modifiers}
    return charted or (info.is_therapy and payer.discipline_modifier)


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


def _hospital_setting_issues(billed: Sequence[tuple[Charge, CodeInfo]], payer: PayerRules,
                             schedule: FeeSchedule, rule: dict) -> list[Issue]:
    """PCTC-7 therapy codes billed by the practice for a patient in a hospital setting (see the rule file)."""
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
