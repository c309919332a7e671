"""Remittance exceptions a person settles (issue 12): `accept` an 835 quarantined only for a faulty envelope
while its money balances, and `match` a claim payment no claim of ours matched to the claim it pays.

- **accept** waives exactly the faults `otedi.x12.x835.WAIVABLE` lists (IEA02/GE02/SE02 control numbers
  that differ from their headers, an empty BPR16 when DTM*405 gives the production date) and nothing else:
  a file with any other defect, or whose money does not balance to the cent, is still refused with the
  reason. The file then posts as `otedi remit post` would have (its register row says so).
- **match** links each open `claim_not_found` exception of one CLP01 to our claim: the payment gets the
  claim, and its money moves onto the claim as new ledger entries - each entry it posted without a claim
  is negated and posted again on the claim (and its line, matched as posting matches lines), because the
  ledger is append-only - the exception is resolved and the claim's status follows as posting sets it.

Each action is audited (`remit_accept` on `file:<name>`, `remit_match` on `claim:<id>`); messages carry ids,
codes and amounts only. The caller commits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from otedi.actions.audit import ActionError, record, require_note
from otedi.charges.load import file_sha256
from otedi.errors import X12Error
from otedi.remit.post import ZERO, apply_adjudication, match_line, post_remittance_file
from otedi.warehouse import models
from otedi.x12 import x835

SUBJECT_MAX = 80  # audit_event.subject
# Claims no payer has seen: a remittance cannot be theirs.
NEVER_SENT = ("held", "ready", "quarantined", "voided")
_ENTRY_COLUMNS = ("remittance_id", "claim_payment_id", "entry_type", "group_code", "carc", "rarc", "amount",
                  "units", "cpt", "service_date", "reversal")


# -- accept ------------------------------------------------------------------------------------------------


def accept_remittance(session: Session, path: str | Path, *, who: str, note: str) -> dict:
    """Post an 835 that was quarantined only for faults of `x835.WAIVABLE` and whose every transaction
    balances, after a person looked at it. Returns what changed (also in the audit row)."""
    note = require_note(note)
    path = Path(path)
    if not path.is_file():
        raise ActionError(f"{path.name}: no such file")
    digest = file_sha256(path)
    row = session.scalar(select(models.InboundFile).where(models.InboundFile.sha256 == digest).with_for_update())
    if row is None:
        raise ActionError(f"{path.name} was never given to `otedi remit post`: post it; only a file it "
                          f"quarantined can be accepted")
    name = row.file_name
    if row.status != "quarantined":
        raise ActionError(f"{name} is {row.status}, not quarantined: only a quarantined 835 is accepted "
                          f"(and only once)")
    waivable = ", ".join(x835.WAIVABLE)
    try:
        scan = x835.scan_835(path, waive=x835.WAIVABLE)
    except X12Error as exc:
        raise ActionError(f"{name} cannot be accepted: {exc} (accept waives only {waivable})") from None
    if not scan.waived:
        raise ActionError(f"{name} has none of the faults accept waives ({waivable}): post it with "
                          f"`otedi remit post`")
    unbalanced = [t for t in scan.transactions if not t.balanced]
    if unbalanced:
        t = unbalanced[0]
        raise ActionError(f"{name} cannot be accepted: its money does not balance (transaction ST02 "
                          f"{t.envelope.control_number}: {t.problems[0].message}; {len(unbalanced)} of "
                          f"{len(scan.transactions)} transaction(s) unbalanced)")
    waived = [str(e) for e in scan.waived]
    result = post_remittance_file(session, path, name=name, waive=scan.waived_codes)
    if result.status == "quarantined":  # the second reading disagrees with the first: never expected
        raise ActionError(f"{name} cannot be accepted: {result.message}")
    row.message = "accepted after review, waived: " + "; ".join(waived)
    summary = result.summary()
    changes = {"file": name, "sha256": digest, "status": ["quarantined", result.status],
               "waived_codes": sorted(scan.waived_codes), "waived": waived,
               "transactions": summary["transactions"], "claims_matched": summary["claims_matched"],
               "unmatched": summary["unmatched"], "paid": summary["totals"]["paid"],
               "bpr02": summary["totals"]["bpr02"],
               "held": [h["transaction"] for h in summary["held"]]}
    record(session, action="remit_accept", subject=f"file:{name}"[:SUBJECT_MAX], who=who, note=note,
           changes=changes)
    return changes


# -- match -------------------------------------------------------------------------------------------------


@dataclass
class _Service:
    """One 2110 service of a claim payment, rebuilt from the ledger entries posting wrote for it (in order:
    its payment, then its adjustments), in the shape `match_line` reads."""

    procedure: str
    service_date: date | None
    charge: Decimal  # Σ its entries = SVC02
    entries: list[models.LedgerEntry]
    line_control_number: str | None = None  # not in the ledger
    original_procedure: str = ""


def _services(entries: list[models.LedgerEntry]) -> list[_Service]:
    """Line-level entries (they carry the procedure) grouped back into services: a new service starts at
    each payment entry and wherever procedure, date, units or remarks change. Two consecutive unpaid
    services with the same code, date, units and remarks read as one (their money goes to one line)."""
    services: list[_Service] = []
    key = None
    for entry in entries:
        if entry.cpt is None:
            continue
        this = (entry.cpt, entry.service_date, entry.units, entry.rarc)
        if not services or entry.entry_type == "payment" or this != key:
            services.append(_Service(entry.cpt, entry.service_date, ZERO, []))
            key = this
        services[-1].entries.append(entry)
        services[-1].charge += entry.amount
    return services


def _open_exceptions(session: Session, patient_control_number: str) -> list[models.RemitException]:
    exceptions = list(session.scalars(
        select(models.RemitException)
        .where(models.RemitException.kind == "claim_not_found",
               models.RemitException.reference == patient_control_number)
        .order_by(models.RemitException.id).with_for_update()))
    if not exceptions:
        raise ActionError(f"no unmatched remittance claim with CLP01 {patient_control_number} "
                          f"(the unmatched_remittances list shows them)")
    open_ = [e for e in exceptions if not e.resolved]
    if not open_:
        matched = {session.get(models.Claim, e.claim_payment.claim_pk).claim_id
                   for e in exceptions if e.claim_payment.claim_pk is not None}
        raise ActionError(f"CLP01 {patient_control_number} was already matched"
                          + (f" to claim {', '.join(sorted(matched))}" if matched else "")
                          + ": nothing left to match")
    return open_


def match_remittance_claim(session: Session, patient_control_number: str, *, claim_id: str, who: str,
                           note: str) -> dict:
    """Link the unmatched claim payments of CLP01 `patient_control_number` to our claim `claim_id` and move
    their money onto it. Returns what changed (also in the audit row)."""
    note = require_note(note)
    claim = session.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id)
                           .options(selectinload(models.Claim.lines)).with_for_update())
    if claim is None:
        raise ActionError(f"no claim {claim_id}")
    if claim.status in NEVER_SENT:
        raise ActionError(f"claim {claim_id} is {claim.status}: it was never sent, so no payer adjudicated it")
    exceptions = _open_exceptions(session, patient_control_number)
    for exc in exceptions:
        payment = exc.claim_payment
        if payment.claim_pk is not None:
            raise ActionError(f"CLP01 {patient_control_number}: claim payment {payment.id} is already linked to "
                              f"a claim; its exception {exc.id} is inconsistent - nothing changed")
        if abs(payment.charge_amount) > claim.total_charge:
            raise ActionError(f"CLP01 {patient_control_number} charges {abs(payment.charge_amount)} (CLP03), more "
                              f"than claim {claim_id} billed ({claim.total_charge}): not this claim")
    status_before = claim.status
    moved, totals = [], defaultdict(lambda: ZERO)
    for exc in exceptions:
        payment = exc.claim_payment
        entries = list(session.scalars(select(models.LedgerEntry)
                                       .where(models.LedgerEntry.claim_payment_id == payment.id)
                                       .order_by(models.LedgerEntry.id)))
        if any(e.claim_pk is not None for e in entries):
            raise ActionError(f"CLP01 {patient_control_number}: claim payment {payment.id} has ledger entries "
                              f"on a claim already - nothing changed")
        line_of, not_found = _lines_for(entries, claim, payment, exc)
        rows = [_entry_row(e, amount=-e.amount, claim_pk=None, claim_line_pk=None) for e in entries]
        reposted = [_entry_row(e, amount=e.amount, claim_pk=claim.id, claim_line_pk=line_of.get(e.id))
                    for e in entries]
        if rows:
            session.execute(insert(models.LedgerEntry), rows + reposted)
        for extra in not_found:
            session.add(extra)
        payment.claim_pk = claim.id
        exc.resolved = True
        remittance = session.get(models.Remittance, payment.remittance_id)
        remittance.matched += 1
        remittance.unmatched = max(remittance.unmatched - 1, 0)
        apply_adjudication(claim, status=payment.status_code, payer_claim_number=payment.payer_claim_number,
                           crossover=payment.crossover_payer is not None, entries=reposted)
        for entry in reposted:
            totals[entry["entry_type"]] += entry["amount"]
        moved.append({"exception": exc.id, "claim_payment": payment.id, "trace_number": remittance.trace_number,
                      "status_code": payment.status_code, "charge": str(payment.charge_amount),
                      "paid": str(payment.paid_amount), "entries_moved": len(entries),
                      "lines_not_found": [x.reference for x in not_found]})
    session.flush()
    changes = {"patient_control_number": patient_control_number, "claim": claim_id,
               "status": [status_before, claim.status], "payer_icn": claim.payer_icn, "payments": moved,
               "posted": {k: str(v) for k, v in sorted(totals.items())}}
    record(session, action="remit_match", subject=f"claim:{claim_id}"[:SUBJECT_MAX], who=who, note=note,
           changes=changes)
    return changes


def _lines_for(entries: list[models.LedgerEntry], claim: models.Claim, payment: models.ClaimPayment,
               exc: models.RemitException) -> tuple[dict[int, int], list[models.RemitException]]:
    """Ledger entry id -> our claim line id, matched per service as posting matches lines (procedure,
    date and charge; the 6R is not in the ledger), and a `line_not_found` exception per service that
    matches none (its money stays on the claim, without a line)."""
    line_of: dict[int, int] = {}
    not_found: list[models.RemitException] = []
    used: set[int] = set()
    for service in _services(entries):
        line = match_line(service, claim.lines, used)
        if line is None:
            not_found.append(models.RemitException(
                remittance_id=exc.remittance_id, claim_payment_id=payment.id, kind="line_not_found",
                reference=f"{service.procedure} {service.service_date}"[:80], charge_amount=service.charge,
                paid_amount=sum((e.amount for e in service.entries if e.entry_type == "payment"), ZERO),
                message=f"service {service.procedure} on {service.service_date} matches no line of claim "
                        f"{claim.claim_id} (matched by hand from CLP01 {payment.patient_control_number})"))
            continue
        used.add(line.id)
        line_of.update({e.id: line.id for e in service.entries})
    return line_of, not_found


def _entry_row(entry: models.LedgerEntry, *, amount: Decimal, claim_pk: int | None,
               claim_line_pk: int | None) -> dict:
    return {**{c: getattr(entry, c) for c in _ENTRY_COLUMNS}, "amount": amount, "claim_pk": claim_pk,
            "claim_line_pk": claim_line_pk}
