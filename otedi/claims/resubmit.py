"""Resubmission: corrected, void and secondary claims built from claims already sent.

What each claim gets (ot_billing_rules.md §2.8, §5.1, §5.2):

- rejected by the 999/277CA (never adjudicated): a new original, frequency 1,
  for every payer (a rejected replacement or void is sent again as 7 or 8);
  so does a denied claim whose payer the biller changed on its charges.
- denied or partially paid, after the biller fixed the charges: payers with
  `corrected_claim: frequency_7_8` get a replacement (frequency 7, REF*F8 =
  the payer's claim number, every line). Traditional Medicare Part B
  (`reopening`) takes no 7/8: a denial it called unprocessable (remark MA130)
  is resubmitted as a new claim, any other denial becomes a work item to
  request a reopening or redetermination, and no 837P is built.
- void on request: frequency 8 with REF*F8, only for payers that take 7/8.
- secondary: a secondary payer pays what the primary left the patient (PR:
  deductible, coinsurance, copay) and may pay what the primary's plan does not
  cover (mappings/remit/secondary_payable_denials.yaml). So a primary claim
  adjudicated with patient responsibility left on some line, whatever it
  denied on others, or with a line denied only for such a reason, goes to the
  secondary payer when the patient's charges for those dates were also
  exported to one (payer_sequence S, one charge per service line, same date
  and CPT): a claim to that payer carrying the primary's adjudication from our
  ledger (2320/2330A/2330B, 2430 per line). A line the primary paid nothing
  on, left the patient nothing on, and denied for any other reason (a billing,
  coding, authorization or medical-necessity denial: CO-16, CO-50 ...) stays
  off the secondary claim - it is corrected or appealed with the primary - and
  its secondary charge stays unbilled. The secondary payer's charges are coded
  again under its own rules (units, modifiers, edits: a Medicare secondary
  claim gets Medicare's total-time units, not the primary's midpoint units);
  each date's charge as the primary adjudicated it, and the primary's payment
  and adjustments, are apportioned to the re-coded lines (per code when the
  date has the same codes on both, else per date, in proportion to each
  line's charge for its units), so every line and the claim balance. A primary
  that crossed the claim over itself (835 CLP02 19 / NM1*TT, status forwarded) is not
  billed again: its crossover record (otedi.remit.crossover) takes the secondary payer's 835.

Planning and building are one path: `plan_resubmissions` decides every claim (what would be built, why,
for how much, or the work item instead) without writing anything - the dry run `otedi ar resubmit` shows
it - and `resubmit` builds exactly that plan, so the two never disagree. Later steps of a plan see what
earlier ones change (a claim corrected and voided in one request, secondary charges taken, the coded
visits a later secondary claim's KX and visit counters count), as building them one after another would.

New claims are stored in status 'ready' with a `claim_link` to the claim they
came from and go out through the normal batch and pyx12 gate. Their lines
repeat the original's coded lines (code, modifiers, units, charge, pointers);
the header (patient, subscriber, payer, providers, authorization) comes from
the charges as they are now, which is where a biller's fixes land. Each new
claim gets a new claim id (a hash of the original's id and the kind, 17
characters) and new line control numbers (claim id, dash, line number), so
REF*6R stays unique per claim and across the warehouse. The original keeps
its lines and ledger; its status becomes 'replaced' or 'voided' (the link
keeps the status it had). Asking twice builds nothing new: one link per
original and kind. A person's request (`who`) is audited: one `resubmit` row
per claim built, on the original (`claim:<id>`); the nightly cycle's own
secondary build is not a person's action and is not.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from otedi import config
from otedi.actions.audit import ActionError, record
from otedi.charges.load import from_model
from otedi.charges.record import Charge
from otedi.claims.build import claim_model, seed_history, visit_key
from otedi.claims.grouping import group_into_claims
from otedi.claims.model import Adjustment, Claim, LineAdjudication, PriorPayer
from otedi.coding.disciplines import disciplines
from otedi.coding.payers import payer_rules
from otedi.coding.scrub import scrub_visit
from otedi.errors import OtediError
from otedi.warehouse import models
from otedi.warehouse.models import ClaimLink

ZERO = Decimal("0.00")
CORRECTABLE = ("rejected", "denied", "partially_paid")
VOIDABLE = ("accepted", "paid", "partially_paid", "denied", "patient_balance")  # the payer holds the claim
SECONDARY_AFTER = ("paid", "partially_paid", "patient_balance", "denied")  # adjudicated, not crossed over
SECONDARY_DENIALS = "remit/secondary_payable_denials.yaml"
UNPROCESSABLE = "MA130"  # Medicare: claim unprocessable, correct and submit as new
FREQUENCY = {"resubmission": "1", "replacement": "7", "void": "8", "secondary": "1"}
ORIGINAL_STATUS_AFTER = {"resubmission": "replaced", "replacement": "replaced", "void": "voided"}
AUDIT_ACTION = "resubmit"
# The audit note of a person's secondary build when they give none: the 835 is the reason, not a judgement.
SECONDARY_NOTE = "secondary claim due after the primary's 835"


@dataclass(frozen=True)
class BuiltClaim:
    claim_id: str
    original_claim_id: str
    kind: str  # resubmission | replacement | void | secondary
    frequency_code: str
    payer_id: str


@dataclass(frozen=True)
class WorkItem:
    claim_id: str
    reason: str
    next_step: str


@dataclass(frozen=True)
class PlannedClaim:
    """A claim `resubmit` would build (the dry run shows these; `resubmit` builds exactly these)."""
    claim_id: str  # the new claim's id (CLM01), the same whenever it is planned
    original_claim_id: str
    kind: str  # resubmission | replacement | void | secondary
    frequency_code: str
    payer_id: str
    amount: Decimal  # the new claim's total charge (a void's: the charge it cancels)
    reason: str  # why, from the claim's status and ledger (codes and amounts only)


@dataclass
class ResubmitPlan:
    planned: list[PlannedClaim] = field(default_factory=list)
    existing: list[BuiltClaim] = field(default_factory=list)  # asked again: what was built the first time
    work_items: list[WorkItem] = field(default_factory=list)
    # how to build each planned claim, in order (within the session that planned it)
    _steps: list[tuple[models.Claim, Callable[[Session], models.Claim]]] = field(default_factory=list, repr=False)
    # what earlier steps change, for the later ones: claim pk -> its status after; secondary charge id ->
    # its status after; patient id -> the visits coded for secondary claims (history for KX and visit limits)
    _status: dict[int, str] = field(default_factory=dict, repr=False)
    _taken: dict[str, str] = field(default_factory=dict, repr=False)
    _visits: dict[str, list] = field(default_factory=lambda: defaultdict(list), repr=False)

    def summary(self) -> dict:
        return {
            "would_build": [vars(p) for p in self.planned],
            "already_built": [vars(b) for b in self.existing],
            "work_items": [vars(w) for w in self.work_items],
        }

    def _add(self, planned: PlannedClaim, original: models.Claim, step: Callable[[Session], models.Claim]) -> None:
        self.planned.append(planned)
        self._steps.append((original, step))

    def _status_of(self, row: models.Claim) -> str:
        return self._status.get(row.id, row.status)

    def _charge_status(self, charge: models.Charge) -> str:
        return self._taken.get(charge.charge_id, charge.status)


@dataclass
class ResubmitResult:
    built: list[BuiltClaim] = field(default_factory=list)
    existing: list[BuiltClaim] = field(default_factory=list)  # asked again: what was built the first time
    work_items: list[WorkItem] = field(default_factory=list)
    planned: list[PlannedClaim] = field(default_factory=list)  # each built claim's reason and amount

    def summary(self) -> dict:
        why = {p.claim_id: p for p in self.planned}
        return {
            "built": [{**vars(b), **({"amount": why[b.claim_id].amount, "reason": why[b.claim_id].reason}
                                     if b.claim_id in why else {})} for b in self.built],
            "already_built": [vars(b) for b in self.existing],
            "work_items": [vars(w) for w in self.work_items],
        }


def plan_resubmissions(session: Session, *, today: date, claim_ids: Collection[str] | None = None,
                       void_ids: Collection[str] = (), secondary: bool = False) -> ResubmitPlan:
    """What `resubmit` would build with the same arguments, and why, building nothing (writes nothing).

    claim_ids: claims the biller corrected (None: every claim rejected, denied or partially paid);
    void_ids: claims to cancel; secondary: also every secondary claim that is due."""
    plan = ResubmitPlan()
    appealed = _awaiting_appeal(session)
    for row in _select(session, claim_ids, CORRECTABLE, plan):
        if row.claim_id in appealed:
            # An appeal and a corrected claim ask the payer for the same decision (for Medicare Part B a
            # correction is itself a reopening or a redetermination: ot_billing_rules.md, corrections); sending
            # both while the appeal is open asks twice, and both would pay if both succeeded.
            plan.work_items.append(WorkItem(row.claim_id, f"appealed on {appealed[row.claim_id]}: the payer has "
                                            "not decided yet", "wait for the decision's 835; correct the claim "
                                            "only if the appeal is lost"))
            continue
        _plan_correction(session, row, today, plan)
    for row in _select(session, void_ids, None, plan):
        _plan_void(session, row, plan)
    if secondary:
        primaries = session.scalars(
            select(models.Claim).where(models.Claim.payer_sequence == "P",
                                       models.Claim.status.in_(SECONDARY_AFTER + ("forwarded",)))
            .options(selectinload(models.Claim.lines)).order_by(models.Claim.claim_id)).all()
        for row in primaries:
            if plan._status_of(row) == row.status:  # not replaced or voided by this plan
                _plan_secondary(session, row, today, plan)
    return plan


def resubmit(session: Session, *, today: date, claim_ids: Collection[str] | None = None,
             void_ids: Collection[str] = (), secondary: bool = False,
             who: str | None = None, note: str | None = None) -> ResubmitResult:
    """Build the claims `plan_resubmissions` plans, in status 'ready'. The caller commits and then batches.

    who: the person asking (otedi.actions.audit.actor): one audit row per claim built, with `note` - which
    a correction or void needs (ActionError before anything is built); secondary claims alone default to
    SECONDARY_NOTE. None: the nightly cycle's own secondary build, not audited."""
    plan = plan_resubmissions(session, today=today, claim_ids=claim_ids, void_ids=void_ids, secondary=secondary)
    note = (note or "").strip()
    if who is not None and not note:
        corrections = sorted({p.original_claim_id for p in plan.planned if p.kind != "secondary"})
        if corrections:
            raise ActionError(f"say why in --note: a corrected or void claim is recorded with its reason "
                              f"({len(corrections)} planned, e.g. claim {corrections[0]}); nothing was built")
        note = SECONDARY_NOTE
    result = ResubmitResult(existing=list(plan.existing), work_items=list(plan.work_items),
                            planned=list(plan.planned))
    for planned, (original, step) in zip(plan.planned, plan._steps):
        status_before = original.status
        row = step(session)
        built = _built(row, original, planned.kind)
        if (built.claim_id, built.frequency_code, built.payer_id) != (
                planned.claim_id, planned.frequency_code, planned.payer_id):
            raise AssertionError(f"claim {planned.original_claim_id}: built {built}, planned {planned}")
        result.built.append(built)
        if who is not None:
            changes = {"claim_id": built.claim_id, "kind": built.kind, "frequency_code": built.frequency_code,
                       "payer_id": built.payer_id, "total_charge": str(row.total_charge), "status": row.status,
                       "reason": planned.reason}
            if original.status != status_before:
                changes["original_status"] = [status_before, original.status]
            record(session, action=AUDIT_ACTION, subject=f"claim:{original.claim_id}", who=who, note=note,
                   changes=changes)
    session.flush()
    return result


def _awaiting_appeal(session: Session) -> dict[str, date]:
    """Claim id -> the date its appeal was filed, for every appeal no 835 for the claim has answered since."""
    from otedi.actions.appeals import appeals_filed  # actions import claims: not at module level

    waiting = {}
    for claim_id, filed in appeals_filed(session).items():
        answered = session.scalar(
            select(models.ClaimPayment.id).join(models.Remittance)
            .join(models.Claim, models.Claim.id == models.ClaimPayment.claim_pk)
            .where(models.Claim.claim_id == claim_id, models.Remittance.posted_at > filed["at"]).limit(1))
        if answered is None:
            waiting[claim_id] = filed["on"]
    return waiting


def _select(session: Session, claim_ids: Collection[str] | None, statuses: Sequence[str] | None,
            plan: ResubmitPlan) -> list[models.Claim]:
    query = select(models.Claim).options(selectinload(models.Claim.lines)).order_by(models.Claim.claim_id)
    if claim_ids is None:
        return list(session.scalars(query.where(models.Claim.status.in_(statuses))))
    rows = list(session.scalars(query.where(models.Claim.claim_id.in_(list(claim_ids)))))
    for missing in sorted(set(claim_ids) - {row.claim_id for row in rows}):
        plan.work_items.append(WorkItem(missing, "no claim with this id", "check the claim id (CLM01)"))
    return rows


# --- corrections and voids ----------------------------------------------------------------------


def _plan_correction(session: Session, row: models.Claim, today: date, plan: ResubmitPlan) -> None:
    done = _link(session, row, ("resubmission", "replacement"))
    if done is not None:
        plan.existing.append(_built(done.claim, row, done.kind))
        return
    status = plan._status_of(row)
    if status not in CORRECTABLE:
        plan.work_items.append(WorkItem(row.claim_id, f"claim is {status}; there is nothing to correct",
                                        "correct only rejected, denied or partially paid claims"))
        return
    charges = _charges(session, row)
    header = from_model(charges[row.lines[0].charge_id])
    rules, _ = payer_rules(row.payer_id, row.claim_filing_code, row.service_date_from)
    payer_changed = header.payer_id != row.payer_id
    if status == "rejected" or payer_changed:
        rules_now, _ = payer_rules(header.payer_id, header.claim_filing_code, row.service_date_from)
        deadline = rules_now.timely_filing.deadline(row.service_date_from)
        if today > deadline:
            plan.work_items.append(WorkItem(
                row.claim_id, f"the {rules_now.name} filing limit ended {deadline}; a new claim would deny (CARC 29)",
                "document a timely filing exception or write the charges off"))
            return
        why = ("rejected by the 999/277CA, so never filed: sent again as a new claim" if status == "rejected" else
               f"{_denied_text(session, row)}; the charges now name payer {header.payer_id}, not {row.payer_id}: "
               f"a new claim to that payer")
        _plan_copy(row, "resubmission", charges, why, plan)
    elif rules.corrected_claim == "reopening":
        if _unprocessable(session, row):
            _plan_copy(row, "resubmission", charges, f"{_denied_text(session, row)}; {rules.name} called it "
                       f"unprocessable (remark {UNPROCESSABLE}): corrected and sent as a new claim", plan)
        else:
            plan.work_items.append(WorkItem(
                row.claim_id, f"{rules.name} does not process corrected claims (frequency 7/8)",
                "request a reopening for a clerical error, or a redetermination, from the MAC"))
    elif not row.payer_icn:
        plan.work_items.append(WorkItem(
            row.claim_id, "no payer claim number (277CA REF*1K / 835 CLP07) on file for REF*F8",
            "get the payer's claim number, then correct the claim again"))
    else:
        _plan_copy(row, "replacement", charges, f"{_denied_text(session, row)}; the corrected claim replaces "
                   f"payer claim {row.payer_icn}", plan)


def _plan_void(session: Session, row: models.Claim, plan: ResubmitPlan) -> None:
    done = _link(session, row, ("void",))
    if done is not None:
        plan.existing.append(_built(done.claim, row, done.kind))
        return
    rules, _ = payer_rules(row.payer_id, row.claim_filing_code, row.service_date_from)
    status = plan._status_of(row)
    if rules.corrected_claim == "reopening":
        plan.work_items.append(WorkItem(
            row.claim_id, f"{rules.name} does not process voids (frequency 8)",
            "ask the MAC to cancel the claim through a reopening"))
    elif status not in VOIDABLE or not row.payer_icn:
        plan.work_items.append(WorkItem(
            row.claim_id, f"claim is {status} without a payer claim number to void",
            "void only a claim the payer accepted or adjudicated (REF*F8 needs its claim number)"))
    else:
        _plan_copy(row, "void", _charges(session, row),
                   f"void asked for: cancels payer claim {row.payer_icn} ({status.replace('_', ' ')})", plan)


def _plan_copy(original: models.Claim, kind: str, charges: dict[str, models.Charge], reason: str,
               plan: ResubmitPlan) -> None:
    """Plan a claim that repeats the original's lines (resubmission, replacement, void)."""
    frequency, _ = _frequency(original, kind)
    header = charges[original.lines[0].charge_id]
    plan._add(PlannedClaim(claim_id=new_claim_id(original.claim_id, kind), original_claim_id=original.claim_id,
                           kind=kind, frequency_code=frequency, payer_id=header.payer_id,
                           amount=original.total_charge, reason=reason),
              original, lambda session: _build(session, original, kind, charges))
    plan._status[original.id] = ORIGINAL_STATUS_AFTER[kind]


def _denied_text(session: Session, row: models.Claim) -> str:
    """'denied 65.00 (CO-197)' from the ledger, net of reversals; else the claim's status."""
    net: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for group, carc, amount in session.execute(select(
            models.LedgerEntry.group_code, models.LedgerEntry.carc, models.LedgerEntry.amount).where(
            models.LedgerEntry.claim_pk == row.id, models.LedgerEntry.entry_type == "denial")):
        net[(group or "", carc or "")] += amount
    denied = {k: v for k, v in net.items() if v > 0}
    if not denied:
        return row.status.replace("_", " ")
    codes = ", ".join(f"{g}-{c}" for g, c in sorted(denied))
    return f"{row.status.replace('_', ' ')}: {sum(denied.values(), ZERO)} denied ({codes})"


def _unprocessable(session: Session, row: models.Claim) -> bool:
    remarks = session.scalars(select(models.ClaimPayment.remark_codes).where(models.ClaimPayment.claim_pk == row.id))
    line_remarks = session.scalars(select(models.LedgerEntry.rarc).where(models.LedgerEntry.claim_pk == row.id))
    return any(UNPROCESSABLE in (text or "").split(":") for text in [*remarks, *line_remarks])


# --- secondary claims -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Share:
    """What of a primary claim goes to the secondary payer, and why."""
    lines: tuple[models.ClaimLine, ...]  # the primary's lines the secondary claim carries
    left_off: tuple[tuple[models.ClaimLine, str], ...]  # lines denied for a reason it would not pay, and the codes
    reason: str


def _secondary_share(session: Session, row: models.Claim) -> _Share | None:
    """The primary's lines that go to the secondary payer (None: nothing is left for it to consider).

    From the ledger, net of reversals. A line goes unless the primary paid nothing on it, left the patient
    nothing on it, and denied it for a reason outside secondary_payable_denials.yaml. The claim is due when
    a line that goes carries patient responsibility, or was denied only for such a reason (a claim-level
    denial for any other reason keeps the claim with the primary until it is corrected)."""
    payable = secondary_payable_reasons()
    net: dict[tuple, Decimal] = defaultdict(lambda: ZERO)  # (line pk or None, entry type, group, carc) -> amount
    for line_pk, kind, group, carc, amount in session.execute(select(
            models.LedgerEntry.claim_line_pk, models.LedgerEntry.entry_type, models.LedgerEntry.group_code,
            models.LedgerEntry.carc, models.LedgerEntry.amount).where(models.LedgerEntry.claim_pk == row.id)):
        net[(line_pk, kind, group or "", carc or "")] += amount

    def total(line_pk: int | None, kind: str) -> Decimal:
        return sum((v for (pk, k, _, _), v in net.items() if pk == line_pk and k == kind), ZERO)

    def denials(line_pk: int | None) -> list[tuple[str, str, Decimal]]:
        return sorted((g, c, v) for (pk, k, g, c), v in net.items() if pk == line_pk and k == "denial" and v > 0)

    def codes(found: list[tuple[str, str, Decimal]]) -> str:
        return ", ".join(f"{g}-{c} {v}" for g, c, v in found)

    lines, left_off = [], []
    for line in row.lines:
        denied = denials(line.id)
        if (denied and total(line.id, "payment") <= 0 and total(line.id, "patient_responsibility") <= 0
                and any(c not in payable for _, c, _ in denied)):
            left_off.append((line, codes(denied)))
        else:
            lines.append(line)
    if not lines:
        return None
    patient = total(None, "patient_responsibility") + sum(
        (total(line.id, "patient_responsibility") for line in lines), ZERO)
    claim_level = denials(None)
    payable_denied = [] if any(c not in payable for _, c, _ in claim_level) else [
        d for pk in (None, *(line.id for line in lines)) for d in denials(pk) if d[1] in payable]
    if patient <= 0 and not payable_denied:
        return None
    why = [f"left {patient} patient responsibility"] if patient > 0 else []
    if payable_denied:
        why.append(f"denied {sum((v for *_, v in payable_denied), ZERO)} for reasons the secondary payer may pay "
                   f"({codes(payable_denied)})")
    reason = f"the primary ({row.payer_id}) {' and '.join(why)}"
    if left_off:
        reason += (f"; line {', '.join(str(line.line_number) for line, _ in left_off)} left off (denied "
                   f"{'; '.join(text for _, text in left_off)}: correct or appeal it with the primary)")
    return _Share(tuple(lines), tuple(left_off), reason)


def _plan_secondary(session: Session, row: models.Claim, today: date, plan: ResubmitPlan) -> None:
    done = _link(session, row, ("secondary", "crossover"))
    if done is not None and done.kind == "crossover":
        return  # the primary payer forwarded it: the secondary payer's 835 posts to the crossover record
    if done is not None:
        plan.existing.append(_built(done.claim, row, done.kind))
        return
    dates = sorted({line.service_date for line in row.lines})
    coverage = list(session.scalars(
        select(models.Charge).where(models.Charge.practice_id == row.practice_id,
                                    models.Charge.patient_id == row.patient_id,
                                    models.Charge.payer_sequence == "S",
                                    models.Charge.service_date.in_(dates))
        .order_by(models.Charge.charge_id)))
    if not coverage:
        return  # no secondary payer on file for these dates
    if row.status == "forwarded":
        plan.work_items.append(WorkItem(
            row.claim_id, "the primary crossed this claim over to the secondary payer (835 NM1*TT)",
            "wait for the secondary payer's 835; do not bill it again"))
        return
    share = _secondary_share(session, row)
    if share is None:
        return  # nothing left for a secondary payer to consider
    charges = _charges(session, row)
    matched, kept, problem = _match_secondary_charges(share, charges, coverage, plan)
    if problem:
        plan.work_items.append(WorkItem(row.claim_id, problem, "fix the secondary charges, then run resubmit again"))
        return
    # The secondary payer's charges the primary never billed (its rounding gave them no unit) are coded too,
    # on the dates the secondary claim carries.
    on_claim = {disciplines().of_role(charges[line.charge_id].rendering_role).name for line in share.lines}
    days = {line.service_date for line in share.lines}
    extra = [c for c in coverage if c not in matched and c not in kept and plan._charge_status(c) == "new"
             and c.service_date in days and disciplines().of_role(c.rendering_role).name in on_claim]
    coded = _recode(session, row, [*matched, *extra], today, plan._visits[row.patient_id])
    if coded.claim is None:
        plan.work_items.append(WorkItem(row.claim_id, coded.problem, "fix the secondary charges, then run "
                                        "resubmit again"))
        return
    prior, claim, problem = _apportioned(session, row, from_model(charges[row.lines[0].charge_id]), coded.claim,
                                         share.lines)
    if problem is None:
        problem = _balance_problem(claim, prior)
    if problem:
        plan.work_items.append(WorkItem(row.claim_id, problem,
                                        "review the primary's 835 posting before billing the secondary"))
        return
    billed = {line.charge.charge_id for line in claim.lines}
    statuses = {c.charge_id: "claimed" if c.charge_id in billed else "not_billed" for c in [*matched, *extra]}
    plan._taken.update(statuses)
    plan._visits[row.patient_id].extend(coded.visits)
    reason = share.reason + ("; held for review under the secondary payer's rules (otedi claims review)"
                             if coded.held else "")
    plan._add(PlannedClaim(claim_id=claim.claim_id, original_claim_id=row.claim_id, kind="secondary",
                           frequency_code=claim.frequency_code, payer_id=claim.header.payer_id,
                           amount=claim.total_charge, reason=reason),
              row, lambda session: _store_secondary(session, row, claim, coded, [*matched, *extra], statuses))


@dataclass(frozen=True)
class _Recoded:
    claim: Claim | None  # None: the charges do not make exactly one claim (see problem)
    held: bool = False
    issues: tuple = ()
    problem: str = ""
    visits: tuple = ()  # the coded visits (history for a later secondary claim of the same patient)


def _recode(session: Session, original: models.Claim, rows: list[models.Charge], today: date,
            planned_visits: Sequence = ()) -> _Recoded:
    """Code the secondary payer's charges by its own rules, visit by visit, into one claim.

    planned_visits: visits coded for secondary claims planned before this one, counted as billed."""
    visits: dict[tuple, list[Charge]] = defaultdict(list)
    for row in rows:
        charge = from_model(row)
        visits[visit_key(charge)].append(charge)
    history = seed_history(session, {original.patient_id}, {k[4].year for k in visits})
    for earlier in planned_visits:
        history.record_visit(earlier)
    locality = config.practice(original.practice_id).medicare_locality
    lines, issues, held, coded = [], [], False, []
    for key in sorted(visits, key=lambda k: k[4]):
        visit = scrub_visit(visits[key], history, today=today, locality=locality)
        history.record_visit(visit)
        coded.append(visit)
        lines += visit.lines
        issues += visit.issues
        held = held or visit.held
    claims = group_into_claims(lines)
    if len(claims) != 1:
        return _Recoded(None, problem=f"the secondary payer's charges code into {len(claims)} claims under its "
                                      f"rules, not one beside the primary's claim")
    claim_id = new_claim_id(original.claim_id, "secondary")
    claim = replace(claims[0], claim_id=claim_id, lines=tuple(
        replace(line, line_control_number=f"{claim_id}-{line.number}") for line in claims[0].lines))
    return _Recoded(claim, held, tuple(issues), visits=tuple(coded))


def secondary_payable_reasons() -> frozenset[str]:
    return frozenset(str(c) for c in config.load_yaml(SECONDARY_DENIALS)["carcs"])


def _match_secondary_charges(share: _Share, charges: dict[str, models.Charge], coverage: list[models.Charge],
                             plan: ResubmitPlan) -> tuple[list[models.Charge], list[models.Charge], str | None]:
    """The secondary payer's charge for each line that goes (same date of service and charted CPT), and the
    ones of lines left off (they stay unbilled, for when the primary pays the line after all)."""
    payers = {c.payer_id for c in coverage}
    if len(payers) > 1:
        return [], [], f"secondary charges name {len(payers)} payers ({', '.join(sorted(payers))}) for one claim"
    free = list(coverage)

    def pick(line: models.ClaimLine) -> models.Charge | None:
        primary = charges[line.charge_id]
        candidates = [c for c in free if c.service_date == primary.service_date and c.cpt == primary.cpt]
        same_amount = [c for c in candidates if c.charge_amount == primary.charge_amount]
        found = (same_amount or candidates or [None])[0]
        if found is not None:
            free.remove(found)
        return found

    matched = []
    for line in share.lines:
        found = pick(line)
        if found is None:
            primary = charges[line.charge_id]
            return [], [], (f"no secondary (payer_sequence S) charge for line {line.line_number} "
                            f"({primary.cpt} on {primary.service_date})")
        if plan._charge_status(found) != "new":
            return [], [], (f"secondary charge {found.charge_id} is already {plan._charge_status(found)} (billed "
                            f"without the primary's adjudication?)")
        matched.append(found)
    kept = [found for line, _ in share.left_off if (found := pick(line)) is not None]
    return matched, kept, None


def _ledger_by_line(session: Session, original: models.Claim) -> tuple[
        dict[int | None, Decimal], dict[int | None, dict[tuple[str, str], Decimal]], date | None]:
    """The original claim's payments and adjustments as its payer reported them, per line (None: claim level),
    netted over every posting (a reversal and its correction cancel out), and the adjudication date."""
    entries = session.execute(
        select(models.LedgerEntry, models.Remittance.payment_date, models.Remittance.posted_at)
        .join(models.Remittance, models.Remittance.id == models.LedgerEntry.remittance_id)
        .where(models.LedgerEntry.claim_pk == original.id).order_by(models.LedgerEntry.id)).all()
    paid: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
    cas: dict[int | None, dict[tuple[str, str], Decimal]] = defaultdict(dict)
    adjudicated: date | None = None
    for entry, payment_date, posted_at in entries:
        if entry.entry_type == "payment":
            paid[entry.claim_line_pk] += entry.amount
        else:
            key = (entry.group_code or "OA", entry.carc or "")
            cas[entry.claim_line_pk][key] = cas[entry.claim_line_pk].get(key, ZERO) + entry.amount
        if not entry.reversal:
            day = payment_date or posted_at.date()
            adjudicated = day if adjudicated is None else max(adjudicated, day)
    return paid, cas, adjudicated


def _apportioned(session: Session, original: models.Claim, coverage: Charge, claim: Claim,
                 going: Sequence[models.ClaimLine]) -> tuple[PriorPayer | None, Claim, str | None]:
    """The primary's adjudication of its lines that go to the secondary (`going`, _secondary_share) laid over
    `claim`'s lines, and `claim` with each line's charge (SV102) apportioned from what the primary adjudicated. Lines group per date and code when a date has the same
    codes on both claims (one to one: the primary's figures as they are), else per date; within a group,
    charge, payment and each adjustment are split in proportion to the lines' charges (largest remainder,
    to the cent), and a line's rounding difference goes to its largest adjustment, so every line balances."""
    paid, cas, adjudicated = _ledger_by_line(session, original)
    old = [(line.service_date, line.cpt, line.charge_amount, paid[line.id], cas[line.id]) for line in going]
    new = [(line.number, line.charge.service_date, line.coded.cpt, line.coded.charge_amount) for line in claim.lines]
    same_codes = {day for day in {o[0] for o in old}
                  if sorted(o[1] for o in old if o[0] == day) == sorted(n[2] for n in new if n[1] == day)}

    def group(day: date, cpt: str) -> tuple:
        return (day, cpt) if day in same_codes else (day,)

    totals: dict[tuple, list] = {}
    for day, cpt, charge, line_paid, line_cas in old:
        t = totals.setdefault(group(day, cpt), [ZERO, ZERO, defaultdict(lambda: ZERO)])
        t[0] += charge
        t[1] += line_paid
        for key, value in line_cas.items():
            t[2][key] += value
    members: dict[tuple, list] = defaultdict(list)
    for number, day, cpt, weight in new:
        members[group(day, cpt)].append((number, weight))
    for key in totals:
        if key not in members:
            return None, claim, (f"the primary adjudicated {key[0]}{' ' + key[1] if len(key) > 1 else ''}, which "
                                 f"the secondary payer's coding does not bill; the COB figures cannot balance")
    charge_of: dict[int, Decimal] = {}
    lines: list[LineAdjudication] = []
    for key, (charge, line_paid, line_cas) in totals.items():
        numbers = [n for n, _ in members[key]]
        weights = [w for _, w in members[key]]
        charges = _split(charge, weights)
        paids = _split(line_paid, weights)
        adjustments = {k: _split(v, weights) for k, v in line_cas.items() if v}
        for i, number in enumerate(numbers):
            mine = {k: v[i] for k, v in adjustments.items()}
            rest = charges[i] - paids[i] - sum(mine.values(), ZERO)
            if rest and mine:
                largest = max(mine, key=lambda k: abs(mine[k]))
                mine[largest] += rest
            charge_of[number] = charges[i]
            lines.append(LineAdjudication(line_number=number, paid=paids[i], adjudicated=adjudicated,
                                          adjustments=tuple(Adjustment(g, r, v) for (g, r), v in mine.items() if v)))
    for number, *_ in new:
        charge_of.setdefault(number, ZERO)  # a line only the secondary's coding bills (its date was one group)
    claim = replace(claim, lines=tuple(
        replace(line, coded=replace(line.coded, charge_amount=charge_of[line.number])) for line in claim.lines))
    claim_level = tuple(Adjustment(g, r, v) for (g, r), v in cas[None].items() if v)
    lines.sort(key=lambda ln: ln.line_number)
    every = [*claim_level, *(a for line in lines for a in line.adjustments)]
    patient = sum((a.amount for a in every if a.group == "PR"), ZERO)
    primary_paid = paid[None] + sum((paid[line.id] for line in going), ZERO)
    prior = PriorPayer(coverage=coverage, paid=primary_paid, adjustments=claim_level, lines=tuple(lines),
                       patient_responsibility=patient if patient > 0 else None, payer_claim_number=original.payer_icn)
    return prior, claim, None


def _split(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`total` in cents over `weights`, largest remainder first; the parts add up to `total` exactly."""
    if len(weights) == 1:
        return [total]
    base = sum(weights, ZERO) or Decimal(len(weights))
    weights = weights if sum(weights, ZERO) else [Decimal(1)] * len(weights)
    cents = int((total * 100).to_integral_value())
    exact = [Decimal(cents) * w / base for w in weights]
    parts = [int(e) for e in exact]  # toward zero
    left = cents - sum(parts)
    step = 1 if left > 0 else -1
    for i in sorted(range(len(weights)), key=lambda i: -abs(exact[i] - parts[i]))[:abs(left)]:
        parts[i] += step
    return [Decimal(p) / 100 for p in parts]


def _balance_problem(claim: Claim, prior: PriorPayer) -> str | None:
    """What keeps the primary's figures from balancing the way a COB claim must, if anything."""
    charges = {line.number: line.coded.charge_amount for line in claim.lines}
    for line in prior.lines:
        adjusted = line.paid + sum((a.amount for a in line.adjustments), ZERO)
        if adjusted != charges[line.line_number]:
            return (f"line {line.line_number}: the primary paid {line.paid} and adjusted {adjusted - line.paid}, "
                    f"which is not the line charge {charges[line.line_number]}")
        if line.paid < 0:
            return f"line {line.line_number}: the primary's net payment is negative ({line.paid})"
    adjusted = sum((a.amount for a in prior.adjustments), ZERO) + sum(
        (a.amount for line in prior.lines for a in line.adjustments), ZERO)
    if claim.total_charge - prior.paid != adjusted:
        return (f"the primary paid {prior.paid} and adjusted {adjusted}, which is not the claim charge "
                f"{claim.total_charge}")
    return None


# --- storing new claims ----------------------------------------------------------------------------


def _frequency(original: models.Claim, kind: str) -> tuple[str, str | None]:
    """CLM05-3 and REF*F8 of a claim built from `original`: a rejected replacement or void is sent again as
    what it was."""
    if kind == "resubmission" and original.frequency_code in ("7", "8"):
        return original.frequency_code, original.payer_claim_number
    frequency = FREQUENCY[kind]
    return frequency, original.payer_icn if frequency in ("7", "8") else None


def _build(session: Session, original: models.Claim, kind: str, charges: dict[str, models.Charge]) -> models.Claim:
    """Store the new claim (status 'ready') with the original's lines, and its link."""
    line_charges = [line.charge_id for line in original.lines]
    header = charges[line_charges[0]]
    claim_id = new_claim_id(original.claim_id, kind)
    frequency, payer_claim_number = _frequency(original, kind)
    row = models.Claim(
        claim_id=claim_id, practice_id=header.practice_id, patient_id=header.patient_id,
        payer_id=header.payer_id, payer_sequence=header.payer_sequence, claim_filing_code=header.claim_filing_code,
        rendering_npi=header.rendering_npi, service_date_from=original.service_date_from,
        service_date_to=original.service_date_to, total_charge=original.total_charge,
        expected_allowed=original.expected_allowed,
        frequency_code=frequency, payer_claim_number=payer_claim_number,
        diagnoses=original.diagnoses, status="ready",
    )
    for line, charge_id in zip(original.lines, line_charges):
        row.lines.append(models.ClaimLine(
            line_number=line.line_number, charge_id=charge_id,
            line_control_number=f"{claim_id}-{line.line_number}", service_date=line.service_date, cpt=line.cpt,
            modifiers=line.modifiers, units=line.units, charge_amount=line.charge_amount,
            expected_allowed=line.expected_allowed, dx_pointers=line.dx_pointers,
        ))
    return _link_new(session, row, original, kind)


def _store_secondary(session: Session, original: models.Claim, claim: Claim, coded: _Recoded,
                     charges: list[models.Charge], statuses: dict[str, str]) -> models.Claim:
    """Store the re-coded secondary claim (status 'ready', or 'held' when its coding holds it) and its link;
    the secondary charges become claimed or not_billed, and the coding's issues are kept."""
    row = _link_new(session, claim_model(claim, "held" if coded.held else "ready"), original, "secondary")
    for charge in charges:
        charge.status = statuses[charge.charge_id]
    for issue in coded.issues:
        session.add(models.EditIssue(charge_id=issue.charge_id, claim_id=claim.claim_id, severity=str(issue.severity),
                                     rule=issue.rule, source=issue.source, message=issue.message))
    return row


def _link_new(session: Session, row: models.Claim, original: models.Claim, kind: str) -> models.Claim:
    session.add(row)
    session.flush()
    session.add(ClaimLink(claim_pk=row.id, original_claim_pk=original.id, kind=kind, original_status=original.status))
    if kind in ORIGINAL_STATUS_AFTER:
        original.status = ORIGINAL_STATUS_AFTER[kind]
    session.flush()
    return row


def new_claim_id(original_claim_id: str, kind: str) -> str:
    """CLM01 of a claim built from another: 17 characters, the same for the same original and kind."""
    digest = hashlib.sha256(f"{original_claim_id}|{kind}".encode()).digest()
    return "OT" + base64.b32encode(digest).decode()[:15]


def _link(session: Session, original: models.Claim, kinds: Sequence[str]) -> ClaimLink | None:
    return session.scalar(select(ClaimLink).where(ClaimLink.original_claim_pk == original.id,
                                                  ClaimLink.kind.in_(kinds)))


def _built(row: models.Claim, original: models.Claim, kind: str) -> BuiltClaim:
    return BuiltClaim(claim_id=row.claim_id, original_claim_id=original.claim_id, kind=kind,
                      frequency_code=row.frequency_code, payer_id=row.payer_id)


def _charges(session: Session, row: models.Claim) -> dict[str, models.Charge]:
    ids = [line.charge_id for line in row.lines]
    return {c.charge_id: c for c in session.scalars(select(models.Charge).where(models.Charge.charge_id.in_(ids)))}


# --- what the 837P writer needs at batch time --------------------------------------------------------


def with_prior_payers(session: Session, rows: Sequence[models.Claim], claims: Sequence[Claim]) -> list[Claim]:
    """`claims` (built by batch.claim_from_model from `rows`) with the prior payer's adjudication
    on every secondary claim, for loops 2320/2330/2430."""
    links = {link.claim_pk: link for link in session.scalars(
        select(ClaimLink).where(ClaimLink.claim_pk.in_([row.id for row in rows]), ClaimLink.kind == "secondary")
        .options(selectinload(ClaimLink.original).selectinload(models.Claim.lines)))}
    out = []
    for row, claim in zip(rows, claims):
        link = links.get(row.id)
        if link is None:
            out.append(claim)
            continue
        original = link.original
        coverage = session.scalar(select(models.Charge).where(models.Charge.charge_id == original.lines[0].charge_id))
        # The primary's lines the claim carries: those _secondary_share lets go now - or every line, when that
        # is what reproduces the charges the claim was stored with (built before secondary_payable_denials.yaml
        # changed, or before denied lines were left off).
        share = _secondary_share(session, original)
        candidates = [share.lines] if share is not None else []
        if share is None or len(share.lines) < len(original.lines):
            candidates.append(tuple(original.lines))
        stored = [line.coded.charge_amount for line in claim.lines]
        tries = [_apportioned(session, original, from_model(coverage), claim, going) for going in candidates]
        prior, claim, problem = next((t for t in tries if t[2] is None and stored == [
            line.coded.charge_amount for line in t[1].lines]), tries[0])
        if problem:  # the ledger changed since the claim was built (a later reversal, say)
            raise OtediError(f"secondary claim {row.claim_id}: {problem}")
        out.append(replace(claim, prior_payers=(prior,)))
    return out
