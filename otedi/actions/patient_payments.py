"""Patient payments and refunds (`otedi patient pay|refund`).

A payment applies to the patient's oldest balances first (or to one named claim), as account entries;
what is left over becomes an unapplied credit, and a credit already on the account is used on any
balance still open. A refund pays credit back. The same reference, amount and date for one patient is
one payment however often it is entered or imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi import config
from otedi.accounts.balances import ZERO, claim_balances, patient_claims, unapplied_credit
from otedi.actions.audit import ActionError, record, write_lock
from otedi.warehouse import models

METHODS = ("cash", "check", "card", "eft")
REFERENCE_MAX = 50
AMOUNT_MAX = Decimal("9999999999.99")  # Numeric(12, 2)


@dataclass
class PaymentResult:
    status: str  # posted | already_posted
    payment_id: int
    applied: dict[str, Decimal] = field(default_factory=dict)  # claim id -> amount
    credit: Decimal = ZERO  # the patient's unapplied credit afterwards


def parse_amount(text: str | Decimal) -> Decimal:
    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation:
        raise ActionError(f"amount {text!r} is not a number") from None
    if not amount.is_finite() or amount <= 0 or amount > AMOUNT_MAX or amount != amount.quantize(Decimal("0.01")):
        raise ActionError(f"amount {text} must be positive, in dollars and cents, at most {AMOUNT_MAX}")
    return amount


def _check(method: str, reference: str) -> tuple[str, str]:
    method, reference = method.strip().lower(), reference.strip()
    if method not in METHODS:
        raise ActionError(f"method {method!r} is not one of {', '.join(METHODS)}")
    if not reference or len(reference) > REFERENCE_MAX:
        raise ActionError(f"a payment needs its reference (check number, card authorisation, trace) in 1 to "
                          f"{REFERENCE_MAX} characters")
    return method, reference


def pay(session: Session, *, practice_id: str, patient_id: str, amount: Decimal | str, method: str, reference: str,
        received_on: date, who: str, note: str = "", claim_id: str | None = None,
        source: str = "cli") -> PaymentResult:
    """Post a patient payment (idempotent by patient, reference, amount and date). The caller commits."""
    amount = parse_amount(amount)
    method, reference = _check(method, reference)
    _lock_account(session, practice_id, patient_id)
    known_patient(session, practice_id, patient_id)
    same = _same(session, practice_id, patient_id, "payment", reference, amount, received_on)
    if same is not None:
        return PaymentResult("already_posted", same.id, credit=unapplied_credit(session, practice_id, patient_id))
    claims = patient_claims(session, practice_id, patient_id)
    if claim_id is not None:
        claims = [c for c in claims if c.claim_id == claim_id]
        if not claims:
            raise ActionError(f"claim {claim_id} is not a claim of patient {patient_id} at {practice_id}")
    event = record(session, action="patient_payment", subject=f"patient:{practice_id}:{patient_id}", who=who,
                   note=note or f"{method} payment {reference}",
                   changes={"amount": str(amount), "method": method, "reference": reference,
                            "received_on": received_on.isoformat(), "claim": claim_id, "source": source})
    session.flush()
    payment = models.PatientPayment(practice_id=practice_id, patient_id=patient_id, kind="payment", method=method,
                                    reference=reference, amount=amount, received_on=received_on, source=source,
                                    audit_event_id=event.id)
    session.add(payment)
    session.flush()
    result = PaymentResult("posted", payment.id)
    left = _apply(session, claims, amount, event, payment, result)
    if left > 0:
        _entry(session, practice_id, patient_id, None, "unapplied_credit", left, event, payment)
    if claim_id is None:  # a credit from before pays what this payment did not reach
        credit = unapplied_credit(session, practice_id, patient_id)
        used = credit - _apply(session, claims, credit, event, None, result) if credit > 0 else ZERO
        if used > 0:
            _entry(session, practice_id, patient_id, None, "unapplied_credit", -used, event, None)
    result.credit = unapplied_credit(session, practice_id, patient_id)
    return result


def refund(session: Session, *, practice_id: str, patient_id: str, amount: Decimal | str, method: str, reference: str,
           paid_on: date, who: str, note: str) -> PaymentResult:
    """Pay back part of the patient's unapplied credit (never more than the credit)."""
    amount = parse_amount(amount)
    method, reference = _check(method, reference)
    _lock_account(session, practice_id, patient_id)
    same = _same(session, practice_id, patient_id, "refund", reference, amount, paid_on)
    if same is not None:
        return PaymentResult("already_posted", same.id, credit=unapplied_credit(session, practice_id, patient_id))
    credit = unapplied_credit(session, practice_id, patient_id)
    if amount > credit:
        raise ActionError(f"patient {patient_id} has {credit} of credit; a refund of {amount} would exceed it")
    if not note.strip():
        raise ActionError("say why in --note: every refund is recorded with its reason")
    event = record(session, action="patient_refund", subject=f"patient:{practice_id}:{patient_id}", who=who,
                   note=note.strip(), changes={"amount": str(amount), "method": method, "reference": reference,
                                               "paid_on": paid_on.isoformat()})
    session.flush()
    payment = models.PatientPayment(practice_id=practice_id, patient_id=patient_id, kind="refund", method=method,
                                    reference=reference, amount=amount, received_on=paid_on, source="cli",
                                    audit_event_id=event.id)
    session.add(payment)
    session.flush()
    _entry(session, practice_id, patient_id, None, "unapplied_credit", -amount, event, payment)
    return PaymentResult("posted", payment.id, credit=credit - amount)


def _lock_account(session: Session, practice_id: str, patient_id: str) -> None:
    """Two payments for one patient at once apply one after the other (each sees the other's entries):
    the patient's claims are row-locked on PostgreSQL, the warehouse write-locked on SQLite."""
    write_lock(session)
    session.scalars(select(models.Claim.id).where(models.Claim.practice_id == practice_id,
                                                  models.Claim.patient_id == patient_id).with_for_update()).all()


def _same(session: Session, practice_id: str, patient_id: str, kind: str, reference: str, amount: Decimal,
          day: date) -> models.PatientPayment | None:
    """The payment (or refund) already posted with this identity, if any."""
    p = models.PatientPayment
    return session.scalar(select(p).where(p.practice_id == practice_id, p.patient_id == patient_id, p.kind == kind,
                                          p.reference == reference, p.amount == amount, p.received_on == day))


def known_patient(session: Session, practice_id: str, patient_id: str) -> None:
    """Money is only taken for a practice otedi bills and a patient it has charges for (a typo would
    otherwise open a credit on an account nobody has)."""
    if practice_id not in config.practices():
        raise ActionError(f"practice {practice_id!r} is not configured")
    if session.scalar(select(models.Charge.id).where(models.Charge.practice_id == practice_id,
                                                     models.Charge.patient_id == patient_id).limit(1)) is None:
        raise ActionError(f"no charges for patient {patient_id} at {practice_id}")


def _apply(session: Session, claims: list[models.Claim], money: Decimal, event: models.AuditEvent,
           payment: models.PatientPayment | None, result: PaymentResult) -> Decimal:
    """Apply `money` to the claims' patient balances in order; returns what is left."""
    balances = claim_balances(session, claims)
    for claim in claims:
        owes = balances[claim.id].patient_owes
        if money <= 0:
            break
        if owes <= 0:
            continue
        take = min(owes, money)
        _entry(session, claim.practice_id, claim.patient_id, claim.id, "patient_payment", take, event, payment)
        result.applied[claim.claim_id] = result.applied.get(claim.claim_id, ZERO) + take
        money -= take
    return money


def _entry(session: Session, practice_id: str, patient_id: str, claim_pk: int | None, entry_type: str,
           amount: Decimal, event: models.AuditEvent, payment: models.PatientPayment | None) -> None:
    session.add(models.AccountEntry(practice_id=practice_id, patient_id=patient_id, claim_pk=claim_pk,
                                    entry_type=entry_type, side="patient", amount=amount,
                                    patient_payment_id=payment.id if payment else None, audit_event_id=event.id))
    session.flush()
