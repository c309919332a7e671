"""`otedi patient pay|refund|import|statements|balance`, `otedi ar adjust|approve|decline|appeal|item`
(wiring only: otedi.actions, otedi.accounts)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from otedi.cli_common import (DATA, OK, By, Json, Note, Today, date_option, emit_json, existing_file, out_folder,
                              out_is_terminal, say, show_table, warehouse)

Practice = Annotated[str, typer.Option("--practice",
                                        help="the practice id (mappings/practices.yaml), e.g. BRIGHTHANDS")]
Patient = Annotated[str, typer.Option("--patient", help="the practice's patient id")]
Amount = Annotated[str, typer.Option("--amount", help="dollars and cents, e.g. 40.00")]
Method = Annotated[Literal["cash", "check", "card", "eft"], typer.Option("--method", help="how it was paid")]
Reference = Annotated[str, typer.Option("--reference", help="check number, card authorisation or trace number")]
ClaimId = Annotated[str, typer.Argument(help="the claim id (patient control number, CLM01)", metavar="CLAIM_ID")]


def _in_session(work):
    """Run one action in its own transaction; a concurrent twin's same action (the same payment entered
    twice at once) loses on a unique key or a lock and is retried, finding it done."""
    from otedi.warehouse import db

    warehouse(writes=True)
    return db.in_own_transaction(work, what="the action")


def _show(result, line: str, as_json: bool, code: int = OK) -> int:
    if as_json:
        emit_json(result)
    else:
        say(line)
    return code


def pay(practice: Practice, patient: Patient, amount: Amount, method: Method, reference: Reference,
        on: Annotated[Optional[date], date_option(
            "--date", "--today", help="received on (default: the current date)")] = None,
        claim: Annotated[Optional[str], typer.Option("--claim", help="apply to this claim only")] = None,
        note: Annotated[str, typer.Option("--note", help="why or what (recorded in the audit trail)")] = "",
        by: By = None, as_json: Json = False) -> int:
    """Post a patient payment: to the patient's oldest balances first (or to the one claim named); what is
    left becomes unapplied credit. The same patient, reference, amount and date is one payment, however often
    it is entered.

    Examples:

    ```
    otedi patient pay --practice BRIGHTHANDS --patient P100 --amount 40.00 --method check --reference 1001
    otedi patient pay --practice BRIGHTHANDS --patient P100 --amount 16.80 --method card --reference AUTH77 --claim OTA5HM52Z4RVSJVQK
    ```
    """
    from otedi.actions.audit import actor
    from otedi.actions.patient_payments import pay as post_payment

    r = _in_session(lambda s: post_payment(s, practice_id=practice, patient_id=patient, amount=amount,
                                           method=method, reference=reference, received_on=on or date.today(),
                                           who=actor(by), note=note or "", claim_id=claim))
    applied = ", ".join(f"{c} {a}" for c, a in r.applied.items()) or "no open balance"
    return _show(r.__dict__, f"payment {r.payment_id} {r.status}: applied to {applied}; credit {r.credit}", as_json)


def refund(practice: Practice, patient: Patient, amount: Amount, method: Method, reference: Reference, note: Note,
           on: Annotated[Optional[date], date_option(
               "--date", "--today", help="paid on (default: the current date)")] = None,
           by: By = None, as_json: Json = False) -> int:
    """Refund part of a patient's unapplied credit (never more than the credit; audited).

    Examples:

    ```
    otedi patient refund --practice BRIGHTHANDS --patient P100 --amount 5.00 --method check --reference RF1 --note "overpaid copay"
    ```
    """
    from otedi.actions.audit import actor
    from otedi.actions.patient_payments import refund as post_refund

    r = _in_session(lambda s: post_refund(s, practice_id=practice, patient_id=patient, amount=amount, method=method,
                                          reference=reference, paid_on=on or date.today(), who=actor(by), note=note))
    return _show(r.__dict__, f"refund {r.payment_id} {r.status}; credit left {r.credit}", as_json)


def import_payments(file: Annotated[Path, existing_file("a CSV export of patient payments")],
                    mapping: Annotated[Optional[str], typer.Option(
                        "--mapping", help="the export's layout under mappings/payments/ without .yaml "
                                          "(e.g. card_processor_style); default: the canonical columns")] = None,
                    by: By = None, as_json: Json = False) -> int:
    """Post the patient payments of a card processor's or the EHR's export, each row by the same rules as
    `patient pay` (a row already posted is recognised; a bad row is rejected with its row number).

    Exit 3 when a row was rejected.

    Examples:

    ```
    otedi patient import settlement.csv --mapping card_processor_style
    otedi patient import payments.csv --json
    ```
    """
    from otedi.actions.audit import actor
    from otedi.actions.payment_import import import_payments as post_rows

    r = _in_session(lambda s: post_rows(s, file, who=actor(by), mapping=mapping))
    for bad in r.rejected:
        print(f"otedi: {r.file} row {bad['row']}: {bad['reason']}", file=sys.stderr)
    return _show(r.__dict__, f"{r.file}: {r.posted} posted, {r.already_posted} already posted, {len(r.rejected)} "
                 f"rejected", as_json, DATA if r.rejected else OK)


def statements(as_of: Annotated[Optional[date], date_option(
                   "--as-of", "--today", help="the statement date (default: the current date)")] = None,
               out: Annotated[Optional[Path], typer.Option(
                   "--out", file_okay=False,
                   help="folder for the statements (default $OTEDI_HOME/statements/AS-OF-DATE)")] = None,
               by: By = None, as_json: Json = False) -> int:
    """Write a PDF statement for every patient who owes at least the minimum, at most once per cycle, and
    statements.csv / statements.jsonl for a mail vendor (mappings/ar/statements.yaml).

    Examples:

    ```
    otedi patient statements
    otedi patient statements --as-of 2026-12-01 --out statements/ --json
    ```
    """
    from otedi.accounts.statements import write_statements
    from otedi.actions.audit import actor

    day = as_of or date.today()
    folder = out_folder(out, "statements", day.isoformat())
    r = _in_session(lambda s: write_statements(s, day, folder, who=actor(by)))
    return _show(r.__dict__, f"{len(r.written)} statement(s) in {folder}; {r.skipped_below_minimum} below the "
                 f"minimum, {r.skipped_this_cycle} already sent this cycle", as_json)


def balance(practice: Practice, patient: Patient, as_json: Json = False) -> int:
    """What each claim of a patient has open (insurance and patient side) and the patient's unapplied credit.
    Reads only.

    Examples:

    ```
    otedi patient balance --practice BRIGHTHANDS --patient P100
    otedi patient balance --practice BRIGHTHANDS --patient P100 --json
    ```
    """
    from otedi.accounts.balances import claim_balances, patient_claims, unapplied_credit
    from otedi.actions.patient_payments import known_patient
    from otedi.warehouse import db

    warehouse(writes=False)
    with db.session_scope(readonly=True) as session:
        known_patient(session, practice, patient)  # a typo is refused, not shown as a zero balance
        claims = patient_claims(session, practice, patient)
        balances = claim_balances(session, claims)
        out = {"claims": [balances[c.id].__dict__ | {"status": c.status, "service_date": c.service_date_from}
                          for c in claims],
               "credit": unapplied_credit(session, practice, patient)}
    if as_json:
        emit_json(out)
        return OK
    if out_is_terminal():
        show_table(["claim", "date of service", "status", "billed", "insurance open", "patient owes",
                    "patient paid", "written off"],
                   [[b["claim_id"], b["service_date"], b["status"], b["billed"], b["insurance_open"],
                     b["patient_owes"], b["patient_paid"], b["patient_written_off"]] for b in out["claims"]],
                   title=f"{practice} {patient}",
                   right=("billed", "insurance open", "patient owes", "patient paid", "written off"))
    else:
        for b in out["claims"]:
            say(f"{b['claim_id']}  {b['service_date']}  {b['status']:15} billed {b['billed']}  insurance open "
                f"{b['insurance_open']}  patient owes {b['patient_owes']} (paid {b['patient_paid']}, written off "
                f"{b['patient_written_off']})")
    say(f"unapplied credit {out['credit']}")
    return OK


def adjust(claim: Annotated[str, typer.Option("--claim", help="the claim id whose balance is written off")],
           amount: Amount,
           reason: Annotated[str, typer.Option(
               "--reason", help="small_balance, hardship, bad_debt, administrative, timely_filing, "
                                "duplicate_or_bundled or contractual_correction "
                                "(mappings/ar/adjustment_reasons.yaml)")],
           note: Note, by: By = None, as_json: Json = False) -> int:
    """Write off part of a claim's balance for a reason (the payer's open balance or what the patient owes, as
    the reason says); above the reason's limit it waits for a second person's approval.

    Examples:

    ```
    otedi ar adjust --claim OTA5HM52Z4RVSJVQK --amount 65.00 --reason timely_filing --note "CO-29, no proof"
    ```
    """
    from otedi.actions.adjustments import adjust as write_off
    from otedi.actions.audit import actor

    r = _in_session(lambda s: write_off(s, claim, amount=amount, reason=reason, who=actor(by), note=note))
    line = (f"write-off {r['adjustment']} posted ({r['side']} side, {r['amount']})" if r["status"] == "posted" else
            f"write-off {r['adjustment']} waits for approval (over {r['needs_approval_above']}): "
            f"otedi ar approve {r['adjustment']} --note ... by another person")
    return _show(r, line, as_json)


AdjustmentId = Annotated[int, typer.Argument(help="the write-off's number (as `ar adjust` printed it)",
                                             metavar="ADJUSTMENT_ID")]


def approve(adjustment_id: AdjustmentId, note: Note, by: By = None, as_json: Json = False) -> int:
    """Approve a pending write-off (by another person than the one who asked): it posts now.

    Examples:

    ```
    otedi ar approve 7 --note "checked against the EOB"
    ```
    """
    from otedi.actions.adjustments import approve as approve_write_off
    from otedi.actions.audit import actor

    r = _in_session(lambda s: approve_write_off(s, adjustment_id, who=actor(by), note=note))
    return _show(r, f"write-off {r['adjustment']} {r['status']}", as_json)


def decline(adjustment_id: AdjustmentId, note: Note, by: By = None, as_json: Json = False) -> int:
    """Decline a pending write-off: nothing is written off.

    Examples:

    ```
    otedi ar decline 7 --note "appeal first"
    ```
    """
    from otedi.actions.adjustments import decline as decline_write_off
    from otedi.actions.audit import actor

    r = _in_session(lambda s: decline_write_off(s, adjustment_id, who=actor(by), note=note))
    return _show(r, f"write-off {r['adjustment']} {r['status']}", as_json)


def item(item_id: Annotated[str, typer.Argument(
             help="CLAIM_ID:REASON, as otedi ar worklist lists it", metavar="ITEM_ID")],
         state: Annotated[Literal["open", "in_progress", "waiting", "done"], typer.Option(
             "--state", help="the item's new state")],
         note: Note, by: By = None, as_json: Json = False) -> int:
    """Set a work item's state (open, in_progress, waiting, done); an item still leaves the queue by itself
    when the warehouse resolves it.

    Examples:

    ```
    otedi ar item OTA5HM52Z4RVSJVQK:no_835 --state waiting --note "payer call ref 88, reprocessing"
    ```
    """
    from otedi.actions.audit import actor
    from otedi.actions.work_items import set_state

    r = _in_session(lambda s: set_state(s, item_id, state, who=actor(by), note=note))
    return _show(r, f"{r['item_id']}: {r['was']} -> {r['state']}", as_json)


def appeal(claim_id: ClaimId, note: Note,
           out: Annotated[Optional[Path], typer.Option(
               "--out", file_okay=False, help="folder for the letter (default $OTEDI_HOME/appeals)")] = None,
           today: Today = None, by: By = None, as_json: Json = False) -> int:
    """Write a first-level appeal (a Medicare redetermination request, or the payer kind's appeal letter) as a
    PDF, with the denied lines, the decision date and the deadline; denials that cannot be appealed are
    refused.

    Examples:

    ```
    otedi ar appeal OTA5HM52Z4RVSJVQK --note "Authorization 55-1 was on file for 03-04"
    otedi ar appeal OTA5HM52Z4RVSJVQK --out appeals/ --note "..." --today 2026-12-01 --json
    ```
    """
    from otedi.actions.appeals import appeal as write_appeal
    from otedi.actions.audit import actor

    folder = out_folder(out, "appeals")
    r = _in_session(lambda s: write_appeal(s, claim_id, folder, who=actor(by), note=note, today=today or date.today()))
    late = " (LATE: past the deadline; say why in the letter)" if r["late"] else ""
    return _show(r, f"{r['letter']} for {r['claim_id']} ({r['denied']} denied): {r['file']}; due by "
                    f"{r['deadline']}{late}", as_json)


def register(groups: dict[str, typer.Typer]) -> None:
    patient, ar = groups["patient"], groups["ar"]
    patient.command("pay")(pay)
    patient.command("refund")(refund)
    patient.command("import")(import_payments)
    patient.command("statements")(statements)
    patient.command("balance")(balance)
    ar.command("adjust")(adjust)
    ar.command("approve")(approve)
    ar.command("decline")(decline)
    ar.command("appeal")(appeal)
    ar.command("item")(item)
