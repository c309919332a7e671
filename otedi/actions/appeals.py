"""First-level appeals (`otedi ar appeal CLAIM --note ...`): a letter (PDF) for a denied claim, with the
claim, the denied lines and their codes in words, the dates, and room for the clinical argument; the
appeal's deadline from the payer's decision date (mappings/ar/appeals.yaml). The appeal is recorded
(audit action appeal); the work queue then waits for the payer's decision and the item closes when an
835 for the claim posts after the appeal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi import config
from otedi.actions.audit import ActionError, record, require_note
from otedi.analytics.categories import classify
from otedi.analytics.snapshot import payer_profile
from otedi.files import open_private, private_dir
from otedi.warehouse import models

RULES = "ar/appeals.yaml"
ACTION = "appeal"


@dataclass(frozen=True)
class AppealRules:
    receipt_days: int
    days: int
    letter: str
    decision_days: int


def appeal_rules(payer_kind: str) -> AppealRules:
    data = config.load_yaml(RULES)
    kind = payer_kind if payer_kind in data["days"] else "commercial"
    return AppealRules(int(data["receipt_days"].get(kind, 0)), int(data["days"][kind]), data["letter"][kind],
                       int(data["decision_days"][kind]))


def appeal_deadline(payer_kind: str, decided_on: date) -> date:
    """Last day to file a first-level appeal of a decision dated `decided_on`."""
    rules = appeal_rules(payer_kind)
    return decided_on + timedelta(days=rules.receipt_days + rules.days)


def appeals_filed(session: Session) -> dict[str, dict]:
    """claim id -> the latest appeal recorded for it: {on, deadline, file, at (when it was recorded)}."""
    out = {}
    for event in session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == ACTION)
                                 .order_by(models.AuditEvent.id)):
        changes = json.loads(event.changes)
        out[event.subject.removeprefix("claim:")] = {"on": date.fromisoformat(changes["filed_on"]),
                                                     "deadline": date.fromisoformat(changes["deadline"]),
                                                     "file": changes["file"], "at": _utc(event.at)}
    return out


def appeal(session: Session, claim_id: str, out_dir: str | Path, *, who: str, note: str,
           today: date | None = None) -> dict:
    """Write the appeal letter for a denied claim and record it. The caller commits."""
    note, today = require_note(note), today or date.today()
    claim = session.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))
    if claim is None:
        raise ActionError(f"no claim {claim_id}")
    denied = _denied_lines(session, claim)
    if not denied:
        raise ActionError(f"claim {claim_id} has no denied amount to appeal")
    barred = config.load_yaml(RULES)["not_appealable"]
    denied = [d for d in denied
              if d["carc"] not in barred["carc"] and not set(d["rarc"].split(":")) & set(barred["rarc"])]
    if not denied:
        raise ActionError(f"claim {claim_id}: its denials cannot be appealed (CO-29 late filing: prove timely filing "
                          f"or write it off; MA130: correct and resubmit; CO-253) - {RULES}")
    decided_on = _decision_date(session, claim)
    earlier = appeals_filed(session).get(claim_id)
    if earlier and not _answered_since(session, claim, earlier["at"]):
        raise ActionError(f"claim {claim_id} was appealed on {earlier['on']}; the payer has not answered yet")
    kind, payer_name = payer_profile(claim.payer_id, claim.claim_filing_code)
    rules = appeal_rules(kind)
    deadline = appeal_deadline(kind, decided_on)
    path = private_dir(Path(out_dir)) / f"appeal_{claim_id}_{today.isoformat()}.pdf"
    charge = session.scalar(select(models.Charge).join(models.ClaimLine, models.ClaimLine.charge_id ==
                                                       models.Charge.charge_id)
                            .where(models.ClaimLine.claim_pk == claim.id).limit(1))
    with open_private(path, "wb") as fh:
        fh.write(_letter(claim, charge, config.practice(claim.practice_id), payer_name, rules, denied, decided_on,
                         deadline, note, today))
    total = sum((d["amount"] for d in denied), Decimal("0.00"))
    record(session, action=ACTION, subject=f"claim:{claim_id}", who=who, note=note,
           changes={"filed_on": today.isoformat(), "decided_on": decided_on.isoformat(),
                    "deadline": deadline.isoformat(), "late": today > deadline, "denied": str(total),
                    "file": path.name})
    return {"claim_id": claim_id, "file": str(path), "deadline": deadline, "late": today > deadline,
            "denied": total, "letter": rules.letter}


def _denied_lines(session: Session, claim: models.Claim) -> list[dict]:
    rows: dict[tuple, Decimal] = {}
    for line_pk, cpt, day, group, carc, rarc, amount in session.execute(select(
            models.LedgerEntry.claim_line_pk, models.LedgerEntry.cpt, models.LedgerEntry.service_date,
            models.LedgerEntry.group_code, models.LedgerEntry.carc, models.LedgerEntry.rarc, models.LedgerEntry.amount)
            .where(models.LedgerEntry.claim_pk == claim.id, models.LedgerEntry.entry_type == "denial")):
        key = (cpt or "", day, group or "", carc or "", rarc or "")
        rows[key] = rows.get(key, Decimal("0.00")) + Decimal(str(amount)).quantize(Decimal("0.01"))
    out = []
    for (cpt, day, group, carc, rarc), amount in sorted(rows.items(), key=lambda kv: str(kv[0])):
        if amount > 0:
            why = classify(group, carc, rarc)
            out.append({"cpt": cpt, "date": day, "code": f"{group}-{carc}" + (f" ({rarc})" if rarc else ""),
                        "carc": carc, "rarc": rarc, "why": why.label, "amount": amount})
    return out


def _decision_date(session: Session, claim: models.Claim) -> date:
    """The date of the payer's latest decision on the claim (BPR16 of its latest 835, else when posted)."""
    row = session.execute(select(models.Remittance.payment_date, models.Remittance.posted_at)
                          .join(models.ClaimPayment, models.ClaimPayment.remittance_id == models.Remittance.id)
                          .where(models.ClaimPayment.claim_pk == claim.id)
                          .order_by(models.ClaimPayment.id.desc()).limit(1)).first()
    return row.payment_date or row.posted_at.date()


def _answered_since(session: Session, claim: models.Claim, appealed_at: datetime) -> bool:
    """An 835 for the claim posted after the appeal was recorded: the payer's decision on it."""
    return any(_utc(t) > appealed_at for t in session.scalars(
        select(models.Remittance.posted_at)
        .join(models.ClaimPayment, models.ClaimPayment.remittance_id == models.Remittance.id)
        .where(models.ClaimPayment.claim_pk == claim.id)))


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive UTC, PostgreSQL aware: aware UTC either way."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _letter(claim, charge, practice, payer_name: str, rules: AppealRules, denied: list[dict], decided_on: date,
            deadline: date, note: str, today: date) -> bytes:
    pdf = FPDF(format="letter")
    pdf.set_creation_date(datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc))
    pdf.add_page()

    def line(text: str = "", style: str = "", size: int = 10) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")

    line(practice.name, "B", 12)
    line(f"{practice.address1}, {practice.city}, {practice.state} {practice.zip}   NPI {practice.npi}")
    line(f"Contact: {practice.contact_name}, {practice.contact_phone}")
    line()
    line(today.isoformat())
    line(f"To: {payer_name} (payer id {claim.payer_id}) - appeals / redeterminations")
    line()
    line(f"{rules.letter}", "B", 12)
    line(f"Patient: {charge.patient_first_name} {charge.patient_last_name}   Date of birth: {charge.patient_dob}")
    line(f"Member id: {charge.member_id}   Our claim: {claim.claim_id}   Payer claim number: {claim.payer_icn or '-'}")
    line(f"Dates of service: {claim.service_date_from} to {claim.service_date_to}   Decision dated {decided_on}; "
         f"this request is due by {deadline}.")
    line()
    line("We do not agree with the determination on these services:", "B")
    for d in denied:
        line(f"- {d['cpt']} on {d['date']}: ${d['amount']:,.2f} denied with {d['code']} ({d['why']})")
    line()
    line("Why the services should be paid:", "B")
    line(note)
    line()
    line("Clinical argument (the treating therapist):", "B")
    for _ in range(8):
        line("_" * 95)
    line()
    line("Enclosed: plan of care and its certification, the treatment notes of these dates, the progress report.")
    line()
    line("Signature ______________________________   Name, credentials ______________________   Date __________")
    return bytes(pdf.output())
