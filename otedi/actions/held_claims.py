"""Held claims: what a biller sees (`review`), and the two ways out: `release` into the next batch after
review, optionally with modifiers and units a person attests to, or `void` (not billed).

A hold means a rule found something only a person can settle (a missing plan-of-care signature, an NCCI
pair the notes may justify with 59/X{EPSU}, units over the MUE ...). otedi never adds a modifier by
itself; a release records who added which modifier and why. Changing a line's units scales its charge
(and expected allowed amount) by the line's own price per unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from otedi import config
from otedi.actions.audit import ActionError, locked_claim, record, require_note
from otedi.coding.modifiers import modifier_rules, order_modifiers
from otedi.warehouse import models

RELEASE_RULES = "rules/release_modifiers.yaml"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ReleaseRules:
    modifiers: dict[str, str]
    units_max: int


@lru_cache(maxsize=4)
def _release_rules(root: str) -> ReleaseRules:
    data = yaml.safe_load((Path(root) / RELEASE_RULES).read_text(encoding="utf-8"))
    return ReleaseRules(modifiers={str(k): v for k, v in data["modifiers"].items()}, units_max=int(data["units_max"]))


def release_rules() -> ReleaseRules:
    return _release_rules(str(config.mappings_dir()))


@dataclass
class ClaimReview:
    claim_id: str
    status: str
    practice_id: str
    payer_id: str
    service_dates: tuple[str, str]
    total_charge: Decimal
    lines: list[dict] = field(default_factory=list)
    issues: list[dict] = field(default_factory=list)  # the rules that held it, and every other finding


def _claim(session: Session, claim_id: str) -> models.Claim:
    claim = session.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))
    if claim is None:
        raise ActionError(f"no claim {claim_id}")
    return claim


def review(session: Session, claim_id: str) -> ClaimReview:
    """The claim, its lines and every issue found on it or its charges (ids, codes and amounts only)."""
    claim = _claim(session, claim_id)
    charge_ids = [line.charge_id for line in claim.lines]
    issues = session.scalars(select(models.EditIssue).where(or_(
        models.EditIssue.claim_id == claim.claim_id, models.EditIssue.charge_id.in_(charge_ids)))
        .order_by(models.EditIssue.id))
    return ClaimReview(
        claim_id=claim.claim_id, status=claim.status, practice_id=claim.practice_id, payer_id=claim.payer_id,
        service_dates=(claim.service_date_from.isoformat(), claim.service_date_to.isoformat()),
        total_charge=claim.total_charge,
        lines=[{"line": ln.line_number, "charge_id": ln.charge_id, "service_date": ln.service_date.isoformat(),
                "cpt": ln.cpt, "modifiers": ln.modifiers, "units": ln.units, "charge": ln.charge_amount}
               for ln in claim.lines],
        issues=[{"severity": i.severity, "rule": i.rule, "charge_id": i.charge_id, "message": i.message}
                for i in issues])


def _held(session: Session, claim_id: str) -> models.Claim:
    claim = locked_claim(session, claim_id)
    if claim.status != "held":
        raise ActionError(f"claim {claim_id} is {claim.status}, not held: only a held claim is released or voided")
    return claim


def release(session: Session, claim_id: str, *, who: str, note: str,
            add_modifiers: dict[int, list[str]] | None = None, units: dict[int, int] | None = None) -> dict:
    """Release a held claim into the next batch (status ready), with the modifiers and units a person set.
    Returns what changed; the caller commits."""
    note = require_note(note)
    claim = _held(session, claim_id)
    rules, per_line_max = release_rules(), modifier_rules().max_per_line
    by_number = {ln.line_number: ln for ln in claim.lines}
    for number in {*(add_modifiers or {}), *(units or {})}:
        if number not in by_number:
            raise ActionError(f"claim {claim_id} has no line {number} (lines {', '.join(map(str, by_number))})")
    changes: dict = {"status": ["held", "ready"], "lines": {}}
    for number, added in sorted((add_modifiers or {}).items()):
        refused = [m for m in added if m not in rules.modifiers]
        if refused:
            raise ActionError(f"modifier {', '.join(refused)} cannot be added on release; allowed: "
                              f"{', '.join(rules.modifiers)} ({RELEASE_RULES})")
        line = by_number[number]
        before = [m for m in line.modifiers.split(":") if m]
        after = list(order_modifiers([*before, *added]))
        if len(after) > per_line_max:
            raise ActionError(f"line {number} would carry {len(after)} modifiers; an 837P line holds {per_line_max}")
        line.modifiers = ":".join(after)
        changes["lines"].setdefault(number, {})["modifiers"] = [":".join(before), line.modifiers]
    for number, count in sorted((units or {}).items()):
        if not 1 <= count <= rules.units_max:
            raise ActionError(f"line {number}: units must be 1 to {rules.units_max}, not {count}")
        line = by_number[number]
        old = line.units
        line.charge_amount = _scaled(line.charge_amount, old, count)
        if line.expected_allowed is not None:
            line.expected_allowed = _scaled(line.expected_allowed, old, count)
        line.units = count
        changes["lines"].setdefault(number, {})["units"] = [old, count]
    if units:
        claim.total_charge = sum((ln.charge_amount for ln in claim.lines), Decimal("0.00"))
        allowed = [ln.expected_allowed for ln in claim.lines]
        claim.expected_allowed = sum(allowed, Decimal("0.00")) if all(a is not None for a in allowed) else None
        changes["total_charge"] = str(claim.total_charge)
    claim.status = "ready"
    record(session, action="claim_release", subject=f"claim:{claim_id}", who=who, note=note, changes=changes)
    return changes


def void(session: Session, claim_id: str, *, who: str, note: str) -> dict:
    """Drop a held claim: it is never billed; its charges stay recorded against it."""
    note = require_note(note)
    claim = _held(session, claim_id)
    claim.status = "voided"
    changes = {"status": ["held", "voided"], "total_charge": str(claim.total_charge)}
    record(session, action="claim_void", subject=f"claim:{claim_id}", who=who, note=note, changes=changes)
    return changes


def _scaled(amount: Decimal, old_units: int, new_units: int) -> Decimal:
    return (amount / old_units * new_units).quantize(CENT, rounding=ROUND_HALF_UP)
