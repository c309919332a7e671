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
- secondary: a primary claim adjudicated with patient responsibility, for a
  patient whose charges for those dates were also exported to a secondary
  payer (payer_sequence S, one charge per service line, same date and CPT),
  gets a claim to that payer carrying the primary's adjudication from our
  ledger (2320/2330A/2330B, 2430 per line). A primary that crossed the claim
  over itself (835 NM1*TT, status forwarded) is not billed again.

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
original and kind.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from otedi.charges.load import from_model
from otedi.charges.record import Charge
from otedi.claims.model import Adjustment, Claim, LineAdjudication, PriorPayer
from otedi.coding.payers import payer_rules
from otedi.warehouse import models
from otedi.warehouse.models import ClaimLink

ZERO = Decimal("0.00")
CORRECTABLE = ("rejected", "denied", "partially_paid")
VOIDABLE = ("accepted", "paid", "partially_paid", "denied", "patient_balance")  # the payer holds the claim
SECONDARY_AFTER = ("paid", "partially_paid", "patient_balance")  # primary adjudicated, not crossed over
UNPROCESSABLE = "MA130"  # Medicare: claim unprocessable, correct and submit as new
FREQUENCY = {"resubmission": "1", "replacement": "7", "void": "8", "secondary": "1"}
ORIGINAL_STATUS_AFTER = {"resubmission": "replaced", "replacement": "replaced", "void": "voided"}


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


@dataclass
class ResubmitResult:
    built: list[BuiltClaim] = field(default_factory=list)
    existing: list[BuiltClaim] = field(default_factory=list)  # asked again: what was built the first time
    work_items: list[WorkItem] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "built": [vars(b) for b in self.built],
            "already_built": [vars(b) for b in self.existing],
            "work_items": [vars(w) for w in self.work_items],
        }


def resubmit(session: Session, *, today: date, claim_ids: Collection[str] | None = None,
             void_ids: Collection[str] = (), secondary: bool = False) -> ResubmitResult:
    """Build the claims asked for, in status 'ready'. The caller commits and then batches.

    claim_ids: claims the biller corrected (None: every claim rejected, denied or partially paid);
    void_ids: claims to cancel; secondary: also build every secondary claim that is due."""
    result = ResubmitResult()
    for row in _select(session, claim_ids, CORRECTABLE, result):
        _correct(session, row, today, result)
    for row in _select(session, void_ids, None, result):
        _void(session, row, result)
    if secondary:
        primaries = session.scalars(
            select(models.Claim).where(models.Claim.payer_sequence == "P",
                                       models.Claim.status.in_(SECONDARY_AFTER + ("forwarded",)))
            .options(selectinload(models.Claim.lines)).order_by(models.Claim.claim_id)).all()
        for row in primaries:
            _secondary(session, row, result)
    session.flush()
    return result


def _select(session: Session, claim_ids: Collection[str] | None, statuses: Sequence[str] | None,
            result: ResubmitResult) -> list[models.Claim]:
    query = select(models.Claim).options(selectinload(models.Claim.lines)).order_by(models.Claim.claim_id)
    if claim_ids is None:
        return list(session.scalars(query.where(models.Claim.status.in_(statuses))))
    rows = list(session.scalars(query.where(models.Claim.claim_id.in_(list(claim_ids)))))
    for missing in sorted(set(claim_ids) - {row.claim_id for row in rows}):
        result.work_items.append(WorkItem(missing, "no claim with this id", "check the claim id (CLM01)"))
    return rows


# --- corrections and voids ----------------------------------------------------------------------


def _correct(session: Session, row: models.Claim, today: date, result: ResubmitResult) -> None:
    done = _link(session, row, ("resubmission", "replacement"))
    if done is not None:
        result.existing.append(_built(done.claim, row, done.kind))
        return
    if row.status not in CORRECTABLE:
        result.work_items.append(WorkItem(row.claim_id, f"claim is {row.status}; there is nothing to correct",
                                          "correct only rejected, denied or partially paid claims"))
        return
    charges = _charges(session, row)
    header = from_model(charges[row.lines[0].charge_id])
    rules, _ = payer_rules(row.payer_id, row.claim_filing_code, row.service_date_from)
    payer_changed = header.payer_id != row.payer_id
    if row.status == "rejected" or payer_changed:
        rules_now, _ = payer_rules(header.payer_id, header.claim_filing_code, row.service_date_from)
        deadline = rules_now.timely_filing.deadline(row.service_date_from)
        if today > deadline:
            result.work_items.append(WorkItem(
                row.claim_id, f"the {rules_now.name} filing limit ended {deadline}; a new claim would deny (CARC 29)",
                "document a timely filing exception or write the charges off"))
            return
        _build(session, row, "resubmission", charges, result)
    elif rules.corrected_claim == "reopening":
        if _unprocessable(session, row):
            _build(session, row, "resubmission", charges, result)
        else:
            result.work_items.append(WorkItem(
                row.claim_id, f"{rules.name} does not process corrected claims (frequency 7/8)",
                "request a reopening for a clerical error, or a redetermination, from the MAC"))
    elif not row.payer_icn:
        result.work_items.append(WorkItem(
            row.claim_id, "no payer claim number (277CA REF*1K / 835 CLP07) on file for REF*F8",
            "get the payer's claim number, then correct the claim again"))
    else:
        _build(session, row, "replacement", charges, result)


def _void(session: Session, row: models.Claim, result: ResubmitResult) -> None:
    done = _link(session, row, ("void",))
    if done is not None:
        result.existing.append(_built(done.claim, row, done.kind))
        return
    rules, _ = payer_rules(row.payer_id, row.claim_filing_code, row.service_date_from)
    if rules.corrected_claim == "reopening":
        result.work_items.append(WorkItem(
            row.claim_id, f"{rules.name} does not process voids (frequency 8)",
            "ask the MAC to cancel the claim through a reopening"))
    elif row.status not in VOIDABLE or not row.payer_icn:
        result.work_items.append(WorkItem(
            row.claim_id, f"claim is {row.status} without a payer claim number to void",
            "void only a claim the payer accepted or adjudicated (REF*F8 needs its claim number)"))
    else:
        _build(session, row, "void", _charges(session, row), result)


def _unprocessable(session: Session, row: models.Claim) -> bool:
    remarks = session.scalars(select(models.ClaimPayment.remark_codes).where(models.ClaimPayment.claim_pk == row.id))
    line_remarks = session.scalars(select(models.LedgerEntry.rarc).where(models.LedgerEntry.claim_pk == row.id))
    return any(UNPROCESSABLE in (text or "").split(":") for text in [*remarks, *line_remarks])


# --- secondary claims -----------------------------------------------------------------------------


def _secondary(session: Session, row: models.Claim, result: ResubmitResult) -> None:
    done = _link(session, row, ("secondary",))
    if done is not None:
        result.existing.append(_built(done.claim, row, done.kind))
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
        result.work_items.append(WorkItem(
            row.claim_id, "the primary crossed this claim over to the secondary payer (835 NM1*TT)",
            "wait for the secondary payer's 835; do not bill it again"))
        return
    pr_total = _patient_responsibility(session, row)
    if pr_total <= 0:
        return  # nothing left for a secondary payer to consider
    charges = _charges(session, row)
    matched, problem = _match_secondary_charges(row, charges, coverage)
    if problem:
        result.work_items.append(WorkItem(row.claim_id, problem, "fix the secondary charges, then run resubmit again"))
        return
    prior = _adjudication(session, row, from_model(charges[row.lines[0].charge_id]),
                          line_numbers={line.id: line.line_number for line in row.lines})
    unbalanced = _balance_problem(row, prior)
    if unbalanced:
        result.work_items.append(WorkItem(row.claim_id, unbalanced,
                                          "review the primary's 835 posting before billing the secondary"))
        return
    charges.update({c.charge_id: c for c in matched})
    _build(session, row, "secondary", charges, result, line_charges=[c.charge_id for c in matched])
    for charge in matched:
        charge.status = "claimed"


def _match_secondary_charges(row: models.Claim, charges: dict[str, models.Charge],
                             coverage: list[models.Charge]) -> tuple[list[models.Charge], str | None]:
    """The secondary payer's charge for each line: same date of service and charted CPT."""
    payers = {c.payer_id for c in coverage}
    if len(payers) > 1:
        return [], f"secondary charges name {len(payers)} payers ({', '.join(sorted(payers))}) for one claim"
    free = list(coverage)
    matched = []
    for line in row.lines:
        primary = charges[line.charge_id]
        candidates = [c for c in free if c.service_date == primary.service_date and c.cpt == primary.cpt]
        same_amount = [c for c in candidates if c.charge_amount == primary.charge_amount]
        pick = (same_amount or candidates or [None])[0]
        if pick is None:
            return [], (f"no secondary (payer_sequence S) charge for line {line.line_number} "
                        f"({primary.cpt} on {primary.service_date})")
        if pick.status != "new":
            return [], (f"secondary charge {pick.charge_id} is already {pick.status} (billed without the "
                        f"primary's adjudication?)")
        free.remove(pick)
        matched.append(pick)
    return matched, None


def _patient_responsibility(session: Session, row: models.Claim) -> Decimal:
    amounts = session.scalars(select(models.LedgerEntry.amount).where(
        models.LedgerEntry.claim_pk == row.id, models.LedgerEntry.entry_type == "patient_responsibility"))
    return sum(amounts, ZERO)


def _adjudication(session: Session, original: models.Claim, coverage: Charge, *,
                  line_numbers: dict[int, int]) -> PriorPayer:
    """The original claim's adjudication as its payer reported it, netted over every posting
    (a reversal and its correction cancel out). `coverage` is the charge as billed to that payer;
    `line_numbers` maps the original's line pk to the LX01 of the same line on the new claim."""
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

    def adjustments(line_pk: int | None) -> tuple[Adjustment, ...]:
        return tuple(Adjustment(group, reason, value) for (group, reason), value in cas[line_pk].items() if value)

    lines = tuple(
        LineAdjudication(line_number=line_numbers[line.id], paid=paid[line.id], adjustments=adjustments(line.id),
                         adjudicated=adjudicated)
        for line in original.lines if line.id in line_numbers)
    every = [*adjustments(None), *(a for line in lines for a in line.adjustments)]
    patient = sum((a.amount for a in every if a.group == "PR"), ZERO)
    return PriorPayer(coverage=coverage, paid=sum(paid.values(), ZERO), adjustments=adjustments(None), lines=lines,
                      patient_responsibility=patient if patient > 0 else None, payer_claim_number=original.payer_icn)


def _balance_problem(row: models.Claim, prior: PriorPayer) -> str | None:
    """What keeps the primary's figures from balancing the way a COB claim must, if anything."""
    charges = {line.line_number: line.charge_amount for line in row.lines}
    for line in prior.lines:
        adjusted = line.paid + sum((a.amount for a in line.adjustments), ZERO)
        if adjusted != charges[line.line_number]:
            return (f"line {line.line_number}: the primary paid {line.paid} and adjusted {adjusted - line.paid}, "
                    f"which is not the line charge {charges[line.line_number]}")
        if line.paid < 0:
            return f"line {line.line_number}: the primary's net payment is negative ({line.paid})"
    adjusted = sum((a.amount for a in prior.adjustments), ZERO) + sum(
        (a.amount for line in prior.lines for a in line.adjustments), ZERO)
    if row.total_charge - prior.paid != adjusted:
        return (f"the primary paid {prior.paid} and adjusted {adjusted}, which is not the claim charge "
                f"{row.total_charge}")
    return None


# --- storing new claims ----------------------------------------------------------------------------


def _build(session: Session, original: models.Claim, kind: str, charges: dict[str, models.Charge],
           result: ResubmitResult, *, line_charges: Sequence[str] | None = None) -> models.Claim:
    """Store the new claim (status 'ready') and its link; line_charges replaces each line's charge."""
    line_charges = line_charges or [line.charge_id for line in original.lines]
    header = charges[line_charges[0]]
    claim_id = new_claim_id(original.claim_id, kind)
    frequency, payer_claim_number = FREQUENCY[kind], original.payer_icn
    if kind == "resubmission" and original.frequency_code in ("7", "8"):
        # a rejected replacement or void is sent again as what it was
        frequency, payer_claim_number = original.frequency_code, original.payer_claim_number
    row = models.Claim(
        claim_id=claim_id, practice_id=header.practice_id, patient_id=header.patient_id,
        payer_id=header.payer_id, payer_sequence=header.payer_sequence, claim_filing_code=header.claim_filing_code,
        rendering_npi=header.rendering_npi, service_date_from=original.service_date_from,
        service_date_to=original.service_date_to, total_charge=original.total_charge,
        expected_allowed=original.expected_allowed if kind != "secondary" else None,
        frequency_code=frequency, payer_claim_number=payer_claim_number if frequency in ("7", "8") else None,
        diagnoses=original.diagnoses, status="ready",
    )
    for line, charge_id in zip(original.lines, line_charges):
        row.lines.append(models.ClaimLine(
            line_number=line.line_number, charge_id=charge_id,
            line_control_number=f"{claim_id}-{line.line_number}", service_date=line.service_date, cpt=line.cpt,
            modifiers=line.modifiers, units=line.units, charge_amount=line.charge_amount,
            expected_allowed=line.expected_allowed if kind != "secondary" else None, dx_pointers=line.dx_pointers,
        ))
    session.add(row)
    session.flush()
    session.add(ClaimLink(claim_pk=row.id, original_claim_pk=original.id, kind=kind, original_status=original.status))
    if kind in ORIGINAL_STATUS_AFTER:
        original.status = ORIGINAL_STATUS_AFTER[kind]
    session.flush()
    result.built.append(_built(row, original, kind))
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
        prior = _adjudication(session, original, from_model(coverage),
                              line_numbers={line.id: line.line_number for line in original.lines})
        out.append(replace(claim, prior_payers=(prior,)))
    return out
