"""A claim's two balances, from both ledgers.

    insurance open = billed - (paid + contractual + patient responsibility + other adjustments)  [835s]
                     - insurance write-offs                                                     [actions]
    patient owes   = patient responsibility - patient payments applied - patient write-offs

Denials stay in the insurance balance until corrected, appealed or written off (as reconcile.py says).
When the patient has a secondary payer for a claim's dates (a secondary claim was built from it, the
primary payer crossed it over, or the extract lists a secondary charge for those days, not billed yet), the patient responsibility that claim
left is the secondary payer's to pay first: the patient owes nothing on it, and what the secondary leaves
on its own claim instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from otedi.warehouse import models

ZERO = Decimal("0.00")
INSURER_POSTED = ("payment", "contractual", "patient_responsibility", "other_adjustment")


@dataclass(frozen=True)
class ClaimBalance:
    claim_pk: int
    claim_id: str
    billed: Decimal
    insurance_paid: Decimal
    insurance_adjusted: Decimal  # contractual, other adjustments and insurance write-offs
    insurance_open: Decimal
    patient_responsibility: Decimal
    patient_paid: Decimal
    patient_written_off: Decimal
    insurance_written_off: Decimal
    patient_owes: Decimal


def _money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def claim_balances(session: Session, claims: list[models.Claim]) -> dict[int, ClaimBalance]:
    """The balances of `claims`, by claim primary key (sums in Decimal, whatever the database)."""
    pks = [c.id for c in claims]
    ledger: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for pk, kind, amount in session.execute(select(
            models.LedgerEntry.claim_pk, models.LedgerEntry.entry_type, models.LedgerEntry.amount)
            .where(models.LedgerEntry.claim_pk.in_(pks))):
        ledger[pk][kind] += _money(amount)
    actions: dict[int, dict[tuple[str, str], Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for pk, kind, side, amount in session.execute(select(
            models.AccountEntry.claim_pk, models.AccountEntry.entry_type, models.AccountEntry.side,
            models.AccountEntry.amount).where(models.AccountEntry.claim_pk.in_(pks))):
        actions[pk][(kind, side)] += _money(amount)
    forwarded = billed_to_a_secondary(session, pks)
    out = {}
    for claim in claims:
        posted, done = ledger[claim.id], actions[claim.id]
        insurance_off = done[("write_off", "insurance")]
        responsibility = posted["patient_responsibility"]
        paid, patient_off = done[("patient_payment", "patient")], done[("write_off", "patient")]
        out[claim.id] = ClaimBalance(
            claim_pk=claim.id, claim_id=claim.claim_id, billed=_money(claim.total_charge),
            insurance_paid=posted["payment"],
            insurance_adjusted=posted["contractual"] + posted["other_adjustment"] + insurance_off,
            insurance_open=_money(claim.total_charge) - sum((posted[k] for k in INSURER_POSTED), ZERO) - insurance_off,
            patient_responsibility=responsibility, patient_paid=paid, patient_written_off=patient_off,
            insurance_written_off=insurance_off,
            patient_owes=ZERO if claim.id in forwarded else responsibility - paid - patient_off)
    return out


def billed_to_a_secondary(session: Session, claim_pks: list[int] | None = None) -> set[int]:
    """Primary claims whose patient responsibility goes to a secondary payer: a secondary claim was built from
    them or the primary payer crossed them over to one (a crossover record), or a secondary (or tertiary)
    charge of the same patient lies within their dates of service.
    The reconciliation uses the same set, so both tell the same balances."""
    return set(session.scalars(billed_to_a_secondary_query(claim_pks)))


def billed_to_a_secondary_query(claim_pks: list[int] | None = None):
    """billed_to_a_secondary as one SELECT of claim ids, for queries that use the set inside SQL."""
    c, ch = models.Claim, models.Charge
    linked = select(models.ClaimLink.original_claim_pk).where(models.ClaimLink.kind.in_(("secondary", "crossover")))
    covered = (select(c.id).join(ch, (ch.practice_id == c.practice_id) & (ch.patient_id == c.patient_id)
                                 & ch.service_date.between(c.service_date_from, c.service_date_to))
               .where(c.payer_sequence == "P", ch.payer_sequence.in_(("S", "T"))))
    if claim_pks is not None:
        linked = linked.where(models.ClaimLink.original_claim_pk.in_(claim_pks))
        covered = covered.where(c.id.in_(claim_pks))
    return union(linked, covered)


def patient_claims(session: Session, practice_id: str, patient_id: str) -> list[models.Claim]:
    """The patient's claims at one practice, oldest date of service first (the order payments apply in)."""
    return list(session.scalars(select(models.Claim).where(
        models.Claim.practice_id == practice_id, models.Claim.patient_id == patient_id)
        .order_by(models.Claim.service_date_from, models.Claim.claim_id)))


def unapplied_credit(session: Session, practice_id: str, patient_id: str) -> Decimal:
    """Money the patient paid that no balance has used yet (less refunds)."""
    return sum((_money(a) for a in session.scalars(select(models.AccountEntry.amount).where(
        models.AccountEntry.practice_id == practice_id, models.AccountEntry.patient_id == patient_id,
        models.AccountEntry.entry_type == "unapplied_credit"))), ZERO)
