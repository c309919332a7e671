"""QMB patients: Medicare cost sharing is never the patient's to pay (ot_billing_rules.md §2.13).

A Qualified Medicare Beneficiary (QMB, QMB Plus) may not be billed Medicare deductible, coinsurance or
copays (SSA §1902(n)(3)(B); CMS MLN SE1128 / MLN6739664 "Prohibition on Balance Billing Qualified Medicare
Beneficiaries"): what Medicaid does not pay is written off, never a patient balance, never a statement.

A claim is QMB cost sharing (`qmb_cost_sharing_claims`, the one predicate the write-off and the statements
share) when both hold:
- it carries Medicare cost sharing: a Medicare claim (payer kind medicare, otedi.coding.payers: claim
  filing code MB/MA or a payer file of kind medicare), or a claim linked to one as its secondary claim or
  crossover record (claim_link kind secondary or crossover: the Medicaid side of a dual eligible);
- the patient is a QMB on its dates: a charge of the patient within the claim's dates says qmb Y, or the
  patient's secondary (or tertiary) charge for those dates is with a payer marked `qmb_program: true`.

`write_off_qmb_cost_sharing` writes off what such a claim leaves the patient - `patient_owes` of
otedi.accounts.balances, so coinsurance a secondary payer still has to answer for on its own claim is not
touched here: it is written off from that claim once its 835 leaves it - with reason qmb, through the path
every write-off takes (otedi.actions.adjustments.system_write_off: account_adjustment, account_entry and
audit_event, by "otedi"). It is idempotent (a claim written off owes 0) and safe beside a concurrent twin
(each claim is locked, and its balance read again, before it is written off). What the patient already
paid on such a claim was never theirs to pay: it goes back to the patient's account as unapplied credit
(account entries, audited as `qmb_payment_returned`), the whole cost sharing is written off, and the
claim is listed (`refund_due`) so the biller refunds the credit (`otedi patient refund`) or, with the
patient's consent, keeps it for what they do owe; otedi refunds nothing by itself.

Medicare Advantage plans count as Medicare here (claim filing code 16, "HMO Medicare risk", as well as
payer files of kind medicare): the billing prohibition covers Original Medicare and Medicare Advantage
alike (CMS MLN6739664).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session, aliased

from otedi.accounts.balances import claim_balances
from otedi.actions.adjustments import SYSTEM_ACTOR, system_write_off
from otedi.actions.audit import locked_claim, record, write_lock
from otedi.coding.payers import payer_rules
from otedi.warehouse import models

log = logging.getLogger(__name__)

REASON = "qmb"  # mappings/ar/adjustment_reasons.yaml
LINK_KINDS = ("secondary", "crossover")  # claims that carry a Medicare claim's cost sharing to the next payer
SECONDARY_SEQUENCES = ("S", "T")
NOTE = ("QMB billing prohibition: Medicare deductible, coinsurance and copays of a Qualified Medicare Beneficiary "
        "may not be billed to the patient (SSA §1902(n)(3)(B); CMS MLN SE1128); written off by otedi")
CHUNK = 5_000  # claims per balance query (bound parameters)
MEDICARE_ADVANTAGE = ("16",)  # SBR09/CLP06: HMO Medicare risk
RETURNED = "qmb_payment_returned"  # audit action: a QMB patient's payment of cost sharing back to credit


@dataclass(frozen=True)
class QmbWriteOff:
    claim_id: str
    adjustment: int  # account_adjustment id
    amount: Decimal  # written off
    patient_paid: Decimal  # what the patient had paid on it: returned to their account as credit, to refund

    @property
    def refund_due(self) -> bool:
        return self.patient_paid > 0


def qmb_cost_sharing_claims(session: Session, claim_pks: list[int] | None = None) -> set[int]:
    """The claims (primary keys; of `claim_pks` when given) whose patient share is a QMB patient's Medicare
    cost sharing, which the patient may never be billed (see the module text)."""
    medicare = _payer_keys(session, models.Claim, lambda rules, code: rules.kind == "medicare"
                           or code in MEDICARE_ADVANTAGE)
    if not medicare or claim_pks == []:
        return set()
    programs = _payer_keys(session, models.Charge, lambda rules, _: rules.qmb_program,
                           models.Charge.payer_sequence.in_(SECONDARY_SEQUENCES))
    c, ch, link = models.Claim, models.Charge, models.ClaimLink
    original = aliased(models.Claim)
    carried = select(link.claim_pk).join(original, original.id == link.original_claim_pk).where(
        link.kind.in_(LINK_KINDS), _is_one_of(original, medicare))
    qmb_charge = ch.qmb.is_(True)
    if programs:
        qmb_charge = or_(qmb_charge, and_(ch.payer_sequence.in_(SECONDARY_SEQUENCES), _is_one_of(ch, programs)))
    patient_is_qmb = select(ch.id).where(
        ch.practice_id == c.practice_id, ch.patient_id == c.patient_id,
        ch.service_date.between(c.service_date_from, c.service_date_to), qmb_charge).exists()
    query = select(c.id).where(or_(_is_one_of(c, medicare), c.id.in_(carried)), patient_is_qmb)
    if claim_pks is not None:
        query = query.where(c.id.in_(claim_pks))
    return set(session.scalars(query))


def write_off_qmb_cost_sharing(session: Session, *, today: date) -> list[QmbWriteOff]:
    """Write off every QMB cost-sharing claim's patient balance (reason qmb), as of `today`; the caller
    commits. Returns what was written off, oldest claim id first (`refund_due`: the patient had paid on it)."""
    write_lock(session)  # SQLite: the write lock before reading, so a concurrent twin waits, then finds 0 owed
    pks = sorted(qmb_cost_sharing_claims(session))
    owing: list[models.Claim] = []
    for start in range(0, len(pks), CHUNK):
        claims = list(session.scalars(select(models.Claim).where(models.Claim.id.in_(pks[start:start + CHUNK]))))
        balances = claim_balances(session, claims)
        owing += [claim for claim in claims if balances[claim.id].patient_owes > 0]
    done = []
    for claim in sorted(owing, key=lambda c: c.claim_id):  # one lock order for every run: no deadlock
        locked_claim(session, claim.claim_id)  # PostgreSQL: a twin writing this claim off commits first ...
        balance = claim_balances(session, [claim])[claim.id]  # ... and then this run finds it owes nothing
        if balance.patient_owes <= 0:
            continue
        if balance.patient_paid > 0:
            _return_payment(session, claim, balance.patient_paid, today)
        posted = system_write_off(session, claim.claim_id, amount=balance.patient_owes + balance.patient_paid,
                                  reason=REASON, note=NOTE,
                                  details={"rule": "qmb-billing-prohibition", "as_of": today.isoformat(),
                                           "patient_responsibility": str(balance.patient_responsibility),
                                           "patient_paid": str(balance.patient_paid)})
        done.append(QmbWriteOff(claim.claim_id, posted["adjustment"], balance.patient_owes + balance.patient_paid,
                                balance.patient_paid))
    if done:
        refunds = [w.claim_id for w in done if w.refund_due]
        log.info("QMB cost sharing written off on %d claim(s); patient payments to refund on %d%s", len(done),
                 len(refunds), f": {', '.join(refunds)}" if refunds else "")
    return done


def _return_payment(session: Session, claim: models.Claim, amount: Decimal, today: date) -> None:
    """Take a QMB patient's payment off a claim of cost sharing and back onto their account as credit."""
    event = record(session, action=RETURNED, subject=f"claim:{claim.claim_id}", who=SYSTEM_ACTOR,
                   note="QMB billing prohibition: the patient's payment of Medicare cost sharing goes back to their "
                        "account as credit, to be refunded",
                   changes={"amount": str(amount), "to": "unapplied_credit", "as_of": today.isoformat()})
    session.flush()
    for claim_pk, entry_type, value in ((claim.id, "patient_payment", -amount), (None, "unapplied_credit", amount)):
        session.add(models.AccountEntry(practice_id=claim.practice_id, patient_id=claim.patient_id, claim_pk=claim_pk,
                                        entry_type=entry_type, side="patient", amount=value, audit_event_id=event.id))
    session.flush()


def _payer_keys(session: Session, model, wanted, *where) -> set[tuple[str, str]]:
    """The (payer id, claim filing code) pairs on `model` rows whose payer rules are `wanted`."""
    pairs = session.execute(select(model.payer_id, model.claim_filing_code).where(*where).distinct()).all()
    return {(payer_id, code) for payer_id, code in pairs if wanted(payer_rules(payer_id, code)[0], code)}


def _is_one_of(model, pairs: set[tuple[str, str]]):
    """SQL: the row's (payer_id, claim_filing_code) is one of `pairs`."""
    if not pairs:
        return false()
    return or_(*(and_(model.payer_id == payer_id, model.claim_filing_code == code)
                 for payer_id, code in sorted(pairs)))
