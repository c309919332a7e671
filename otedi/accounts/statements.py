"""Patient statements: one per patient who owes at least the minimum, at most once per cycle.

Each statement lists the claims with a balance (date of service, billed, what insurance paid and
adjusted, what the patient owes), the payments the patient made, the total due, its aging and the due
date, and is written as a PDF for the patient plus one CSV and one JSON line per statement for a mail
vendor. The files name patients: they are 0600 in a 0700 folder. A statement run is recorded per patient
(audit action patient_statement), which is how the cycle rule knows when the last one went out.

A QMB patient's Medicare cost sharing is never on a statement (SSA §1902(n)(3)(B)): those claims are left
out by the predicate the QMB write-off uses (otedi.accounts.qmb), even before the write-off has run.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi import config
from otedi.accounts.balances import ZERO, claim_balances, patient_claims, unapplied_credit
from otedi.accounts.qmb import qmb_cost_sharing_claims
from otedi.actions.audit import record
from otedi.analytics.aging import bucket
from otedi.files import open_private, private_dir, write_private_text
from otedi.warehouse import models

RULES = "ar/statements.yaml"
ACTION = "patient_statement"
ADULT_AGE = 18  # below it, the statement goes to the parent or guardian
CHILD = "19"  # 2000B/2000C relationship: the patient is the subscriber's child


@dataclass
class Statement:
    practice_id: str
    patient_id: str
    as_of: date
    due_on: date
    total_due: Decimal
    credit: Decimal
    lines: list[dict] = field(default_factory=list)  # one per claim with a balance
    payments: list[dict] = field(default_factory=list)
    aging: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class StatementRun:
    written: list[str] = field(default_factory=list)  # PDF paths
    skipped_below_minimum: int = 0
    skipped_this_cycle: int = 0


def _rules() -> dict:
    data = config.load_yaml(RULES)
    return {"minimum": Decimal(str(data["minimum_balance"])), "cycle": int(data["cycle_days"]),
            "due": int(data["due_days"])}


def statements_due(session: Session, as_of: date) -> tuple[list[Statement], int, int]:
    """The statements to send on `as_of`, and how many patients were skipped (below minimum, this cycle).
    Claims of QMB Medicare cost sharing are left out: the patient may never be billed for them."""
    rules = _rules()
    last_sent = _last_sent(session)
    qmb = qmb_cost_sharing_claims(session)
    patients = session.execute(select(models.Claim.practice_id, models.Claim.patient_id).distinct()
                               .order_by(models.Claim.practice_id, models.Claim.patient_id)).all()
    due, below, recent = [], 0, 0
    for practice_id, patient_id in patients:
        claims = patient_claims(session, practice_id, patient_id)
        balances = claim_balances(session, claims)
        owed = [(c, balances[c.id]) for c in claims if balances[c.id].patient_owes > 0 and c.id not in qmb]
        total = sum((b.patient_owes for _, b in owed), ZERO)
        if total < rules["minimum"] or total <= 0:
            below += total > 0
            continue
        sent = last_sent.get((practice_id, patient_id))
        if sent is not None and (as_of - sent).days < rules["cycle"]:
            recent += 1
            continue
        statement = Statement(practice_id, patient_id, as_of, as_of + timedelta(days=rules["due"]), total,
                              unapplied_credit(session, practice_id, patient_id))
        for claim, b in owed:
            statement.lines.append({
                "claim_id": claim.claim_id, "service_date": claim.service_date_from.isoformat(),
                "billed": b.billed, "insurance_paid": b.insurance_paid, "insurance_adjusted": b.insurance_adjusted,
                "patient_responsibility": b.patient_responsibility, "you_paid": b.patient_paid,
                "written_off": b.patient_written_off, "you_owe": b.patient_owes})
            age = bucket((as_of - claim.service_date_from).days)
            statement.aging[age] = statement.aging.get(age, ZERO) + b.patient_owes
        statement.payments = [{"date": p.received_on.isoformat(), "method": p.method, "amount": p.amount,
                               "kind": p.kind} for p in session.scalars(select(models.PatientPayment).where(
                                   models.PatientPayment.practice_id == practice_id,
                                   models.PatientPayment.patient_id == patient_id)
                                   .order_by(models.PatientPayment.received_on))]
        due.append(statement)
    return due, below, recent


def write_statements(session: Session, as_of: date, out_dir: str | Path, *, who: str) -> StatementRun:
    """Write the statements due on `as_of` (PDF each, plus statements.csv and statements.jsonl) and record
    each one sent. The caller commits."""
    out = private_dir(Path(out_dir))
    due, below, recent = statements_due(session, as_of)
    run = StatementRun(skipped_below_minimum=below, skipped_this_cycle=recent)
    vendor_rows, vendor_json = [], []
    for statement in due:
        practice = config.practice(statement.practice_id)
        addressee = _addressee(session, statement)
        pdf = out / f"statement_{statement.practice_id}_{statement.patient_id}_{as_of.isoformat()}.pdf"
        with open_private(pdf, "wb") as fh:
            fh.write(_pdf(statement, practice, addressee))
        run.written.append(str(pdf))
        record(session, action=ACTION, subject=f"patient:{statement.practice_id}:{statement.patient_id}", who=who,
               note=f"statement as of {as_of.isoformat()}", changes={"as_of": as_of.isoformat(),
                                                                      "total_due": str(statement.total_due)})
        vendor = {"practice_id": statement.practice_id, "patient_id": statement.patient_id, **addressee,
                  "statement_date": as_of.isoformat(), "due_on": statement.due_on.isoformat(),
                  "total_due": str(statement.total_due), "pdf": pdf.name}
        vendor_rows.append(vendor)
        vendor_json.append(json.dumps({**vendor, "lines": statement.lines, "aging": statement.aging}, default=str))
    if vendor_rows:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(vendor_rows[0]))
        writer.writeheader()
        writer.writerows(vendor_rows)
        write_private_text(out / "statements.csv", buffer.getvalue())
        write_private_text(out / "statements.jsonl", "\n".join(vendor_json) + "\n")
    return run


def _last_sent(session: Session) -> dict[tuple[str, str], date]:
    out = {}
    for event in session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == ACTION)):
        _, practice_id, patient_id = event.subject.split(":", 2)
        out[(practice_id, patient_id)] = date.fromisoformat(json.loads(event.changes)["as_of"])
    return out


def _addressee(session: Session, statement: Statement) -> dict:
    """Who the statement goes to, at the patient's address as the latest charge gives it. The canonical
    extract has no guarantor: an adult patient is their own; a minor's statement goes to the parent the
    charge names as subscriber (relationship 19), else to "the parent or guardian of" the child."""
    c = session.scalar(select(models.Charge).where(models.Charge.practice_id == statement.practice_id,
                                                   models.Charge.patient_id == statement.patient_id)
                       .order_by(models.Charge.service_date.desc(), models.Charge.id.desc()).limit(1))
    patient = f"{c.patient_first_name} {c.patient_last_name}"
    name = patient
    if _age(c.patient_dob, statement.as_of) < ADULT_AGE:
        parent = " ".join(filter(None, (c.subscriber_first_name, c.subscriber_last_name)))
        name = f"{parent}, parent or guardian of {patient}" if c.relationship == CHILD and parent else \
            f"Parent or guardian of {patient}"
    return {"name": name, "patient_name": patient, "address1": c.patient_address1, "city": c.patient_city,
            "state": c.patient_state, "zip": c.patient_zip}


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _pdf(statement: Statement, practice: config.Practice, to: dict) -> bytes:
    pdf = FPDF(format="letter")
    pdf.set_creation_date(datetime.combine(statement.as_of, datetime.min.time(), tzinfo=timezone.utc))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, practice.name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for text in (practice.address1, f"{practice.city}, {practice.state} {practice.zip}",
                 f"Billing questions: {practice.contact_phone}"):
        pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    for text in (to["name"], to["address1"], f"{to['city']}, {to['state']} {to['zip']}"):
        pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, f"Statement of {statement.as_of.isoformat()}   Account {statement.patient_id}   "
                   f"Patient {to['patient_name']}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 7, f"Amount due ${statement.total_due:,.2f} by {statement.due_on.isoformat()}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 9)
    widths = (26, 26, 28, 38, 26, 24, 22)
    headers = ("Date of service", "Billed", "Insurance paid", "Insurance adjusted*", "Your share", "You paid",
               "You owe")
    for w, h in zip(widths, headers):
        pdf.cell(w, 6, h, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for line in statement.lines:
        values = (line["service_date"], line["billed"], line["insurance_paid"], line["insurance_adjusted"],
                  line["patient_responsibility"], line["you_paid"], line["you_owe"])
        for w, v in zip(widths, values):
            pdf.cell(w, 6, v if isinstance(v, str) else f"{v:,.2f}", border=1)
        pdf.ln()
    pdf.ln(2)
    pdf.multi_cell(0, 4, "* What your insurance reduced under its contract or the practice wrote off. You owe "
                         "only your share (deductible, coinsurance, copay) less what you paid.")
    pdf.ln(2)
    aging = "   ".join(f"{k} days: ${v:,.2f}" for k, v in statement.aging.items())
    pdf.cell(0, 5, f"Age of the balance: {aging}", new_x="LMARGIN", new_y="NEXT")
    if statement.payments:
        paid = ", ".join(f"{p['date']} {p['method']} ${p['amount']:,.2f}{' refund' if p['kind'] == 'refund' else ''}"
                         for p in statement.payments)
        pdf.multi_cell(0, 5, f"Payments received: {paid}")
    if statement.credit > 0:
        pdf.cell(0, 5, f"Credit on your account: ${statement.credit:,.2f}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
