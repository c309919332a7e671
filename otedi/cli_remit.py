"""`otedi remit accept|match`: a biller's actions on remittance exceptions (wiring only: otedi.actions)."""

from __future__ import annotations

import argparse
import json


def cmd_accept(args) -> int:
    from otedi.actions.audit import actor
    from otedi.actions.remittances import accept_remittance

    def done(c: dict) -> str:
        held = f", {len(c['held'])} transaction(s) held or duplicate" if c["held"] else ""
        return (f"{c['file']}: accepted and {c['status'][1]} - {c['transactions']} transaction(s), "
                f"{c['claims_matched']} claim(s) matched, {c['unmatched']} unmatched, paid {c['paid']}, "
                f"BPR02 {c['bpr02']}{held}; waived: {', '.join(c['waived_codes'])}")

    return _act(lambda session: accept_remittance(session, args.file, who=actor(args.by), note=args.note),
                done, args.json)


def cmd_match(args) -> int:
    from otedi.actions.audit import actor
    from otedi.actions.remittances import match_remittance_claim

    def done(c: dict) -> str:
        paid = c["posted"].get("payment", "0.00")
        return (f"CLP01 {c['patient_control_number']} matched to claim {c['claim']}: {len(c['payments'])} "
                f"payment(s) moved onto it, paid {paid}; claim {c['status'][0]} -> {c['status'][1]}")

    return _act(lambda session: match_remittance_claim(session, args.clp_id, claim_id=args.claim,
                                                       who=actor(args.by), note=args.note),
                done, args.json)


def _act(action, done, as_json: bool) -> int:
    from otedi.warehouse import db
    from otedi.warehouse.db import session_scope

    db.upgrade()
    with session_scope() as session:
        changes = action(session)
    print(json.dumps(changes, indent=2, default=str) if as_json else done(changes))
    return 0


def register(remit: argparse._SubParsersAction) -> None:
    """Add the remittance-exception verbs to `otedi remit`."""
    p = remit.add_parser("accept", help="post an 835 quarantined only for a faulty envelope (IEA02/GE02/SE02 "
                                        "control numbers, BPR16 missing with DTM*405) whose money balances")
    p.add_argument("file")
    p.add_argument("--note", required=True, help="why (recorded in the audit trail)")
    p.add_argument("--by", help="who acts (default: OTEDI_USER, else the login name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_accept)
    p = remit.add_parser("match", help="link an unmatched remittance claim (CLP01) to our claim and post "
                                       "its money to it")
    p.add_argument("clp_id", metavar="CLP-ID", help="the CLP01 the 835 carries (unmatched_remittances reference)")
    p.add_argument("--claim", required=True, help="our claim id it pays")
    p.add_argument("--note", required=True, help="why (recorded in the audit trail)")
    p.add_argument("--by", help="who acts (default: OTEDI_USER, else the login name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_match)
