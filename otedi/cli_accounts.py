"""`otedi patient pay|refund|import|statements|balance`, `otedi ar adjust|approve|decline|appeal|item` (wiring)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from otedi.actions.audit import ActionError


def _in_session(work):
    """Run one action in its own transaction; a concurrent twin's same action (the same payment entered
    twice at once) loses on a unique key or a lock and is retried, finding it done."""
    from otedi.warehouse import db

    db.upgrade()
    return db.in_own_transaction(work, what="the action")


def _day(text: str | None) -> date:
    try:
        return date.fromisoformat(text) if text else date.today()
    except ValueError:
        raise ActionError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _show(result: dict, line: str, as_json: bool) -> int:
    print(json.dumps(result, indent=2, default=str) if as_json else line)
    return 0


def cmd_pay(args) -> int:
    from otedi.actions.audit import actor
    from otedi.actions.patient_payments import pay

    r = _in_session(lambda s: pay(s, practice_id=args.practice, patient_id=args.patient, amount=args.amount,
                                  method=args.method, reference=args.reference, received_on=_day(args.date),
                                  who=actor(args.by), note=args.note or "", claim_id=args.claim))
    applied = ", ".join(f"{c} {a}" for c, a in r.applied.items()) or "no open balance"
    return _show(r.__dict__, f"payment {r.payment_id} {r.status}: applied to {applied}; credit {r.credit}",
                 args.json)


def cmd_refund(args) -> int:
    from otedi.actions.audit import actor
    from otedi.actions.patient_payments import refund

    r = _in_session(lambda s: refund(s, practice_id=args.practice, patient_id=args.patient, amount=args.amount,
                                     method=args.method, reference=args.reference, paid_on=_day(args.date),
                                     who=actor(args.by), note=args.note))
    return _show(r.__dict__, f"refund {r.payment_id} {r.status}; credit left {r.credit}", args.json)


def cmd_import(args) -> int:
    from otedi.actions.audit import actor
    from otedi.actions.payment_import import import_payments

    r = _in_session(lambda s: import_payments(s, args.file, who=actor(args.by), mapping=args.mapping))
    for bad in r.rejected:
        print(f"otedi: {r.file} row {bad['row']}: {bad['reason']}", file=sys.stderr)
    _show(r.__dict__, f"{r.file}: {r.posted} posted, {r.already_posted} already posted, {len(r.rejected)} rejected",
          args.json)
    return 1 if r.rejected else 0


def cmd_statements(args) -> int:
    from otedi.accounts.statements import write_statements
    from otedi.actions.audit import actor

    r = _in_session(lambda s: write_statements(s, _day(args.as_of), args.out, who=actor(args.by)))
    return _show(r.__dict__, f"{len(r.written)} statement(s) in {args.out}; {r.skipped_below_minimum} below the "
                 f"minimum, {r.skipped_this_cycle} already sent this cycle", args.json)


def cmd_balance(args) -> int:
    from otedi.accounts.balances import claim_balances, patient_claims, unapplied_credit

    def read(session):
        claims = patient_claims(session, args.practice, args.patient)
        balances = claim_balances(session, claims)
        return {"claims": [balances[c.id].__dict__ | {"status": c.status,
                                                      "service_date": c.service_date_from.isoformat()}
                           for c in claims],
                "credit": unapplied_credit(session, args.practice, args.patient)}

    out = _in_session(read)
    if args.json:
        return _show(out, "", True)
    for b in out["claims"]:
        print(f"{b['claim_id']}  {b['service_date']}  {b['status']:15} billed {b['billed']}  insurance open "
              f"{b['insurance_open']}  patient owes {b['patient_owes']} (paid {b['patient_paid']}, written off "
              f"{b['patient_written_off']})")
    print(f"unapplied credit {out['credit']}")
    return 0


def cmd_adjust(args) -> int:
    from otedi.actions.adjustments import adjust
    from otedi.actions.audit import actor

    r = _in_session(lambda s: adjust(s, args.claim_id, amount=args.amount, reason=args.reason, who=actor(args.by),
                                     note=args.note))
    line = (f"write-off {r['adjustment']} posted ({r['side']} side, {r['amount']})" if r["status"] == "posted" else
            f"write-off {r['adjustment']} waits for approval (over {r['needs_approval_above']}): "
            f"otedi ar approve {r['adjustment']} --note ... by another person")
    return _show(r, line, args.json)


def cmd_decide(args) -> int:
    from otedi.actions.adjustments import approve, decline
    from otedi.actions.audit import actor

    decide = approve if args.action == "approve" else decline
    r = _in_session(lambda s: decide(s, args.adjustment_id, who=actor(args.by), note=args.note))
    return _show(r, f"write-off {r['adjustment']} {r['status']}", args.json)


def cmd_item(args) -> int:
    from otedi.actions.audit import actor
    from otedi.actions.work_items import set_state

    r = _in_session(lambda s: set_state(s, args.item_id, args.state, who=actor(args.by), note=args.note))
    return _show(r, f"{r['item_id']}: {r['was']} -> {r['state']}", args.json)


def cmd_appeal(args) -> int:
    from otedi.actions.appeals import appeal
    from otedi.actions.audit import actor

    r = _in_session(lambda s: appeal(s, args.claim_id, args.out, who=actor(args.by), note=args.note,
                                     today=_day(args.today)))
    late = " (LATE: past the deadline; say why in the letter)" if r["late"] else ""
    return _show(r, f"{r['letter']} for {r['claim_id']} ({r['denied']} denied): {r['file']}; due by "
                    f"{r['deadline']}{late}", args.json)


def _common(p: argparse.ArgumentParser, note_required: bool) -> None:
    p.add_argument("--note", required=note_required, help="why (recorded in the audit trail)")
    p.add_argument("--by", help="who acts (default: OTEDI_USER, else the login name)")
    p.add_argument("--json", action="store_true")


def register_patient(sub: argparse._SubParsersAction) -> None:
    """`otedi patient ...`."""
    p_pt = sub.add_parser("patient", help="patient accounts: payments, refunds, balances").add_subparsers(
        dest="action", required=True)
    for name, func, text in (("pay", cmd_pay, "post a patient payment (oldest balances first)"),
                             ("refund", cmd_refund, "refund part of a patient's unapplied credit")):
        p = p_pt.add_parser(name, help=text)
        p.add_argument("--practice", required=True)
        p.add_argument("--patient", required=True, help="the practice's patient id")
        p.add_argument("--amount", required=True)
        p.add_argument("--method", required=True, help="cash, check, card or eft")
        p.add_argument("--reference", required=True, help="check number, card authorisation or trace")
        p.add_argument("--date", help="received (refund: paid) on, YYYY-MM-DD; default today")
        if name == "pay":
            p.add_argument("--claim", help="apply to this claim only")
        _common(p, note_required=name == "refund")
        p.set_defaults(func=func)
    p = p_pt.add_parser("import", help="post the patient payments of a CSV export (card processor, EHR)")
    p.add_argument("file")
    p.add_argument("--mapping", help="column mapping under mappings/payments/ (without .yaml)")
    p.add_argument("--by", help="who imports (default: OTEDI_USER, else the login name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)
    p = p_pt.add_parser("statements", help="a PDF statement per patient who owes (and a CSV/JSON for mail vendors)")
    p.add_argument("--as-of", help="statement date, YYYY-MM-DD; default today")
    p.add_argument("--out", required=True, help="folder for the statements")
    p.add_argument("--by", help="who runs it (default: OTEDI_USER, else the login name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_statements)
    p = p_pt.add_parser("balance", help="what each claim of a patient has open, and the patient's credit")
    p.add_argument("--practice", required=True)
    p.add_argument("--patient", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_balance)


def register_ar(ar: argparse._SubParsersAction) -> None:
    """`otedi ar adjust|approve|decline|item`."""
    p = ar.add_parser("adjust", help="write off part of a claim's balance (reason from mappings/ar/)")
    p.add_argument("--claim", dest="claim_id", required=True)
    p.add_argument("--amount", required=True)
    p.add_argument("--reason", required=True, help="small_balance, hardship, bad_debt, administrative, "
                                                   "timely_filing, duplicate_or_bundled, contractual_correction")
    _common(p, note_required=True)
    p.set_defaults(func=cmd_adjust)
    for name, text in (("approve", "approve a pending write-off (not the person who asked)"),
                       ("decline", "decline a pending write-off")):
        p = ar.add_parser(name, help=text)
        p.add_argument("adjustment_id", type=int)
        _common(p, note_required=True)
        p.set_defaults(func=cmd_decide)
    p = ar.add_parser("appeal", help="write a first-level appeal letter (PDF) for a denied claim")
    p.add_argument("claim_id")
    p.add_argument("--out", required=True, help="folder for the letter")
    p.add_argument("--today", help="the letter's date (default today)")
    _common(p, note_required=True)
    p.set_defaults(func=cmd_appeal)
    p = ar.add_parser("item", help="set a work item's state: open, in_progress, waiting, done")
    p.add_argument("item_id", help="<claim id>:<reason>, as `otedi ar worklist` lists it")
    p.add_argument("--state", required=True, choices=("open", "in_progress", "waiting", "done"))
    _common(p, note_required=True)
    p.set_defaults(func=cmd_item)
