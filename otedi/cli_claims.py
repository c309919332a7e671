"""`otedi claims review|release|void`: a biller's actions on held claims (wiring only: otedi.actions)."""

from __future__ import annotations

import argparse
import json

from otedi.actions.audit import ActionError

def _pairs(values: list[str] | None, what: str) -> dict[int, list[str]]:
    """["2:59", "2:XU", "3:KX"] -> {2: ["59", "XU"], 3: ["KX"]}."""
    out: dict[int, list[str]] = {}
    for value in values or []:
        line, sep, item = value.partition(":")
        if not sep or not line.isdigit() or not item:
            raise ActionError(f"{what} takes LINE:VALUE (e.g. 2:59), not {value!r}")
        out.setdefault(int(line), []).append(item.strip().upper())
    return out


def cmd_review(args) -> int:
    from otedi.actions.audit import history
    from otedi.actions.held_claims import review
    from otedi.warehouse import db
    from otedi.warehouse.db import session_scope

    db.upgrade()
    with session_scope() as session:
        r = review(session, args.claim_id)
        actions = [{"at": e.at.isoformat(), "by": e.actor, "action": e.action, "note": e.note}
                   for e in history(session, f"claim:{args.claim_id}")]
    if args.json:
        print(json.dumps({**r.__dict__, "actions": actions}, indent=2, default=str))
        return 0
    print(f"claim {r.claim_id}  {r.status}  practice {r.practice_id}  payer {r.payer_id}  "
          f"{r.service_dates[0]}..{r.service_dates[1]}  {r.total_charge}")
    for ln in r.lines:
        print(f"  line {ln['line']}  {ln['service_date']}  {ln['cpt']} {ln['modifiers'] or '-'}  "
              f"{ln['units']} unit(s)  {ln['charge']}  (charge {ln['charge_id']})")
    for issue in r.issues:
        print(f"  {issue['severity'].upper():8} {issue['rule']:22} {issue['message']}")
    for a in actions:
        print(f"  {a['at'][:19]}  {a['by']}: {a['action']} - {a['note']}")
    return 0


def cmd_release(args) -> int:
    from otedi.actions.audit import actor
    from otedi.actions.held_claims import release

    units = {}
    for line, values in _pairs(args.units, "--units").items():
        if not values[-1].isdigit():
            raise ActionError(f"--units takes LINE:N with N a whole number, not {line}:{values[-1]}")
        units[line] = int(values[-1])
    return _act(lambda session: release(session, args.claim_id, who=actor(args.by), note=args.note,
                                        add_modifiers=_pairs(args.add_modifier, "--add-modifier"), units=units),
                f"claim {args.claim_id} released into the next batch", args.json)


def cmd_void(args) -> int:
    from otedi.actions.audit import actor
    from otedi.actions.held_claims import void

    return _act(lambda session: void(session, args.claim_id, who=actor(args.by), note=args.note),
                f"claim {args.claim_id} voided: it will not be billed", args.json)


def _act(action, done: str, as_json: bool) -> int:
    from otedi.warehouse import db
    from otedi.warehouse.db import session_scope

    db.upgrade()
    with session_scope() as session:
        changes = action(session)
    print(json.dumps(changes, indent=2, default=str) if as_json else done)
    return 0


def register(claims: argparse._SubParsersAction) -> None:
    """Add the held-claim verbs to `otedi claims`."""
    p = claims.add_parser("review", help="a claim with its lines, the issues that held it and its actions")
    p.add_argument("claim_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_review)
    for name, func, text in (("release", cmd_release, "release a held claim into the next batch"),
                             ("void", cmd_void, "drop a held claim: it is not billed")):
        p = claims.add_parser(name, help=text)
        p.add_argument("claim_id")
        p.add_argument("--note", required=True, help="why (recorded in the audit trail)")
        p.add_argument("--by", help="who acts (default: OTEDI_USER, else the login name)")
        p.add_argument("--json", action="store_true")
        if name == "release":
            p.add_argument("--add-modifier", action="append", metavar="LINE:MOD",
                           help="add a modifier the documentation supports (59, XE, XS, XP, XU, KX, 76, 77)")
            p.add_argument("--units", action="append", metavar="LINE:N", help="set a line's units")
        p.set_defaults(func=func)
