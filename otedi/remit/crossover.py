"""Crossovers: claims a primary payer forwarded to the next payer itself.

Medicare crosses a dual eligible's (or a Medigap member's) claim over to the secondary payer through
its coordination-of-benefits contractor and says so on its 835: CLP02 19/20/21 ("processed ...,
forwarded to additional payer(s)") and NM1*TT naming the crossover carrier. The secondary payer then
adjudicates a claim we never sent - Medicare's copy of ours, with our CLP01 and REF*6R - and its 835
comes back under our patient control number. Posted onto the Medicare claim it would mix two payers'
adjudications in one balance and overwrite Medicare's ICN (ot_billing_rules.md §2.13).

So a forwarded claim gets a claim record of its own for the secondary side: payer_sequence S, no
837P file, linked to the primary by a `claim_link` of kind `crossover` (one per primary: the unique
key makes a concurrent twin find the first), status `crossed_over` until the secondary payer's 835
posts. Its lines repeat the primary's (code, modifiers, units, charge) and take the patient's
secondary charges for the same date and code, as a secondary claim we build would; its payer is that
charge's payer, else the crossover carrier the 835 named.

Which side a claim payment under a primary's CLP01 posts to is told by who pays (the remittance's
payer key): the payer that adjudicated the primary keeps posting to the primary (its reversals and
corrections included); any other payer posts to the crossover record once the primary was forwarded,
or when it says it processed the claim as secondary or tertiary (CLP02 2/3) - its 835 may come before
Medicare's.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from otedi.warehouse import models
from otedi.x12 import x835

log = logging.getLogger(__name__)

KIND = "crossover"
STATUS = "crossed_over"  # the crossover record before the secondary payer's 835 posts
SECONDARY_SIDE = ("2", "3", "20", "21")  # CLP02: processed as secondary / tertiary (and forwarded)
UNKNOWN_FILING = "ZZ"  # SBR09/CLP06 "mutually defined": the carrier named no filing indicator we know
# CLP02 values (with NM1*TT) that make a primary's claim payment worth the routing question; every other
# claim payment posts to its claim without looking further (the poster's hot path)
ROUTED = frozenset({"2", "3", "19", "20", "21", "22"})


def needs_routing(claim: models.Claim, clp: x835.ClaimPayment) -> bool:
    """Could this claim payment belong to the claim's crossover side? Cheap: no database."""
    return claim.payer_sequence == "P" and (
        clp.status in ROUTED or clp.crossover_carrier is not None or claim.status in ("forwarded", "reversed"))


def forwards(claim: models.Claim, clp: x835.ClaimPayment) -> bool:
    """Is this the primary payer's adjudication forwarding the claim (posted to the primary)?"""
    return claim.payer_sequence == "P" and clp.is_crossover and clp.status not in SECONDARY_SIDE and not clp.is_reversal


def crossover_of(session: Session, primary: models.Claim) -> models.Claim | None:
    """The crossover record of a primary claim, with its lines, if there is one."""
    return session.scalar(
        select(models.Claim).join(models.ClaimLink, models.ClaimLink.claim_pk == models.Claim.id)
        .where(models.ClaimLink.original_claim_pk == primary.id, models.ClaimLink.kind == KIND)
        .options(selectinload(models.Claim.lines)))


def payers_posted(session: Session, claim_pk: int) -> set[str]:
    """Payer keys of the remittances that posted claim payments to a claim."""
    return set(session.scalars(
        select(models.Remittance.payer_key).distinct()
        .join(models.ClaimPayment, models.ClaimPayment.remittance_id == models.Remittance.id)
        .where(models.ClaimPayment.claim_pk == claim_pk, models.Remittance.status == "posted")))


def belongs_to_crossover(session: Session, primary: models.Claim, crossover: models.Claim | None,
                         clp: x835.ClaimPayment, payer_key: str) -> bool:
    """Does this claim payment under the primary's CLP01 post to the crossover side (see the module text)?"""
    if crossover is not None and payer_key in payers_posted(session, crossover.id):
        return True
    if payer_key in payers_posted(session, primary.id):
        return False
    if clp.status in SECONDARY_SIDE:
        return True  # processed as secondary or tertiary: not the primary payer's adjudication
    if clp.is_crossover:
        return False  # the primary payer's own adjudication, forwarding the claim
    return crossover is not None  # another payer, after the primary forwarded the claim


def open_crossover(session: Session, primary: models.Claim, payer_id: str, filing_code: str) -> models.Claim:
    """The primary's crossover record, created (with its lines) if it has none. `payer_id` and `filing_code`
    (the crossover carrier's, from the 835) are used when the patient has no secondary charge for the dates."""
    from otedi.claims.resubmit import new_claim_id  # the claim-id rule of every derived claim

    existing = crossover_of(session, primary)
    if existing is not None:
        return existing
    secondary = _secondary_charges(session, primary)
    first = secondary[0] if secondary else None
    claim_id = new_claim_id(primary.claim_id, KIND)
    try:
        with session.begin_nested():
            record = models.Claim(
                claim_id=claim_id, practice_id=primary.practice_id, patient_id=primary.patient_id,
                payer_id=(first.payer_id if first else payer_id)[:80], payer_sequence="S",
                claim_filing_code=first.claim_filing_code if first else filing_code,
                rendering_npi=primary.rendering_npi, service_date_from=primary.service_date_from,
                service_date_to=primary.service_date_to, total_charge=primary.total_charge, frequency_code="1",
                diagnoses=primary.diagnoses, status=STATUS)
            session.add(record)
            session.flush()
            free = list(secondary)
            for line in primary.lines:
                charge = next((c for c in free if (c.service_date, c.cpt) == (line.service_date, line.cpt)), None)
                if charge is not None:
                    free.remove(charge)
                    charge.status = "claimed"
                session.add(models.ClaimLine(
                    claim_pk=record.id, line_number=line.line_number,
                    charge_id=charge.charge_id if charge else line.charge_id,
                    line_control_number=f"{claim_id}-{line.line_number}", service_date=line.service_date,
                    cpt=line.cpt, modifiers=line.modifiers, units=line.units, charge_amount=line.charge_amount,
                    dx_pointers=line.dx_pointers))
            session.add(models.ClaimLink(claim_pk=record.id, original_claim_pk=primary.id, kind=KIND,
                                         original_status=primary.status))
            session.flush()
    except IntegrityError:  # a concurrent twin created it first
        found = crossover_of(session, primary)
        if found is None:
            raise
        return found
    log.info("claim %s crossed over: crossover record %s", primary.claim_id, claim_id)
    return crossover_of(session, primary)


def carrier_of(clp: x835.ClaimPayment, payer_key: str, payer_name: str | None) -> tuple[str, str]:
    """(payer id, filing code) of the payer a claim payment names as the crossover carrier (NM1*TT), else of
    the payer that sent it (a secondary payer's own 835)."""
    if clp.is_crossover and clp.status not in SECONDARY_SIDE:
        carrier = clp.crossover_carrier
        return ((carrier.id or carrier.name) if carrier else "") or "crossover carrier", UNKNOWN_FILING
    return payer_key or payer_name or "secondary payer", clp.filing_indicator or UNKNOWN_FILING


def _secondary_charges(session: Session, primary: models.Claim) -> list[models.Charge]:
    """The patient's secondary charges for the primary's dates not billed yet (oldest first)."""
    c = models.Charge
    return list(session.scalars(select(c).where(
        c.practice_id == primary.practice_id, c.patient_id == primary.patient_id, c.payer_sequence == "S",
        c.status == "new", c.service_date.between(primary.service_date_from, primary.service_date_to))
        .order_by(c.service_date, c.row_number)))
