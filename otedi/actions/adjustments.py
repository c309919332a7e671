"""Write-offs (`otedi ar adjust`, `otedi ar approve|decline`).

A write-off names a reason from mappings/ar/adjustment_reasons.yaml, which says which balance it writes
off (the payer's open balance or what the patient owes) and above which amount a second person must
approve it. It can never exceed that balance. Posted, it is an account entry; pending, it posts nothing
until approved by someone other than who asked. A write-off the law requires (QMB cost sharing) is posted
by otedi itself through the same path (`system_write_off`), never pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi import config
from otedi.accounts.balances import claim_balances
from otedi.actions.audit import ActionError, locked_claim, record, require_note, write_lock
from otedi.actions.patient_payments import parse_amount
from otedi.warehouse import models

CENT = Decimal("0.01")
REASONS = "ar/adjustment_reasons.yaml"
SIDES = ("insurance", "patient")
SYSTEM_ACTOR = "otedi"  # who a write-off otedi posts by rule is recorded as (system_write_off)


@dataclass(frozen=True)
class Reason:
    key: str
    side: str
    label: str
    approval_above: Decimal
    offered_for: tuple[str, ...] = ()  # CARCs of unrecoverable denials this write-off is offered for


@lru_cache(maxsize=4)
def _reasons(root: str) -> dict[str, Reason]:
    data = config.load_yaml(REASONS)
    out = {}
    for key, r in data["reasons"].items():
        if r["side"] not in SIDES:
            raise config.ConfigError(f"{REASONS}: reason {key} has side {r['side']!r}, not one of {SIDES}")
        out[key] = Reason(key, r["side"], r["label"], Decimal(str(r["approval_above"])).quantize(CENT),
                          tuple(str(c) for c in r.get("offered_for", ())))
    return out


def reasons() -> dict[str, Reason]:
    return _reasons(str(config.mappings_dir()))


def write_off_for(carc: str) -> Reason | None:
    """The write-off offered for an unrecoverable denial with this CARC (CO-29, CO-18, CO-97), if any."""
    return next((r for r in reasons().values() if carc in r.offered_for), None)


def adjust(session: Session, claim_id: str, *, amount: Decimal, reason: str, who: str, note: str) -> dict:
    """Write off `amount` of one claim's balance for `reason`: posted at once, or pending approval."""
    note, amount = require_note(note), parse_amount(amount)
    why = _reason(reason)
    claim = locked_claim(session, claim_id)
    _within_balance(session, claim, why.side, amount)
    return _write_off(session, claim, why, amount, who=who, note=note, pending=amount > why.approval_above)


def system_write_off(session: Session, claim_id: str, *, amount: Decimal, reason: str, note: str,
                     details: dict | None = None) -> dict:
    """A write-off otedi posts itself because a rule requires it (the QMB billing prohibition,
    otedi.accounts.qmb): by SYSTEM_ACTOR, with the rule named in `note`, posted at once whatever the reason's
    approval limit (no person's judgement to check). Otherwise as adjust(): the claim locked for the
    transaction, never more than the balance, one account_adjustment, account_entry and audit_event;
    `details` (ids and amounts only) go into the audit row's changes."""
    note, amount = require_note(note), parse_amount(amount)
    why = _reason(reason)
    claim = locked_claim(session, claim_id)
    _within_balance(session, claim, why.side, amount)
    return _write_off(session, claim, why, amount, who=SYSTEM_ACTOR, note=note, pending=False, details=details)


def _reason(key: str) -> Reason:
    why = reasons().get(key)
    if why is None:
        raise ActionError(f"reason {key!r} is not one of {', '.join(reasons())} ({REASONS})")
    return why


def _write_off(session: Session, claim: models.Claim, why: Reason, amount: Decimal, *, who: str, note: str,
               pending: bool, details: dict | None = None) -> dict:
    adjustment = models.AccountAdjustment(claim_pk=claim.id, reason=why.key, side=why.side, amount=amount,
                                          status="pending" if pending else "posted", requested_by=who)
    session.add(adjustment)
    session.flush()
    event = record(session, action="write_off_request" if pending else "write_off", subject=f"claim:{claim.claim_id}",
                   who=who, note=note, changes={**(details or {}), "adjustment": adjustment.id, "reason": why.key,
                                                "side": why.side, "amount": str(amount), "status": adjustment.status})
    if not pending:
        _post(session, claim, adjustment, event)
    return {"adjustment": adjustment.id, "status": adjustment.status, "side": why.side, "amount": amount,
            "needs_approval_above": why.approval_above if pending else None}


def approve(session: Session, adjustment_id: int, *, who: str, note: str) -> dict:
    """A second person approves a pending write-off: it posts now (if the balance still allows it)."""
    note = require_note(note)
    adjustment, claim = _pending(session, adjustment_id, who)
    _within_balance(session, claim, adjustment.side, adjustment.amount)
    adjustment.status, adjustment.decided_by = "posted", who
    event = record(session, action="write_off_approve", subject=f"claim:{claim.claim_id}", who=who, note=note,
                   changes={"adjustment": adjustment.id, "status": ["pending", "posted"],
                            "amount": str(adjustment.amount)})
    _post(session, claim, adjustment, event)
    return {"adjustment": adjustment.id, "status": "posted", "amount": adjustment.amount}


def decline(session: Session, adjustment_id: int, *, who: str, note: str) -> dict:
    note = require_note(note)
    adjustment, claim = _pending(session, adjustment_id, who)
    adjustment.status, adjustment.decided_by = "declined", who
    record(session, action="write_off_decline", subject=f"claim:{claim.claim_id}", who=who, note=note,
           changes={"adjustment": adjustment.id, "status": ["pending", "declined"]})
    return {"adjustment": adjustment.id, "status": "declined"}


def _pending(session: Session, adjustment_id: int, who: str) -> tuple[models.AccountAdjustment, models.Claim]:
    write_lock(session)
    adjustment = session.get(models.AccountAdjustment, adjustment_id, with_for_update=True)
    if adjustment is None or adjustment.status != "pending":
        raise ActionError(f"write-off {adjustment_id} is {adjustment.status if adjustment else 'unknown'}, "
                          "not pending approval")
    if adjustment.requested_by == who:
        raise ActionError(f"write-off {adjustment_id} was asked for by {who}: another person approves it")
    return adjustment, session.get(models.Claim, adjustment.claim_pk)


def _within_balance(session: Session, claim: models.Claim, side: str, amount: Decimal) -> None:
    balance = claim_balances(session, [claim])[claim.id]
    open_amount = balance.insurance_open if side == "insurance" else balance.patient_owes
    if amount > open_amount:
        raise ActionError(f"claim {claim.claim_id} has {open_amount} open on the {side} side; a write-off of "
                          f"{amount} would exceed it")


def _post(session: Session, claim: models.Claim, adjustment: models.AccountAdjustment,
          event: models.AuditEvent) -> None:
    session.flush()
    session.add(models.AccountEntry(practice_id=claim.practice_id, patient_id=claim.patient_id, claim_pk=claim.id,
                                    entry_type="write_off", side=adjustment.side, reason=adjustment.reason,
                                    amount=adjustment.amount, account_adjustment_id=adjustment.id,
                                    audit_event_id=event.id))
    session.flush()
