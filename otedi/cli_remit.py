"""`otedi remit post|accept|match`, `otedi acks load` (wiring only: otedi.remit, otedi.acks, otedi.actions)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from otedi.cli_common import (By, Json, Note, Today, ack_problem, act, database_failure, each, emit_json, exit_code,
                              out_is_terminal, record_failure, remittance_problem, say, show_table, warehouse, warn)

Files = Annotated[list[Path], typer.Argument(help="the files (each its own transaction)", metavar="FILE...",
                                             exists=True, dir_okay=False, readable=True)]


def _each_file(files: list[Path], load, what: str, today) -> tuple[list[dict], int]:
    """Load each file in its own transaction (one bad file never undoes another), retrying what the
    database can cure, its rows stamped as of `today` (models.stamped_as_of; None: the wall clock); the
    summaries, and how many files failed for good (each told in one line)."""
    from sqlalchemy.exc import SQLAlchemyError

    from otedi.warehouse import db, models

    summaries, failed = [], 0
    if not files:
        return summaries, failed
    warehouse(writes=True)
    for path in each(files, what):
        try:
            with models.stamped_as_of(today):
                summaries.append(db.in_own_transaction(lambda session: load(session, path).summary(),
                                                       what=path.name))
        except SQLAlchemyError as exc:
            failed += 1
            warn(f"{path.name}: {database_failure(exc)}; nothing of this file was committed - run the command "
                 f"again")
            error_id, log = record_failure(exc)
            print(f"  error id {error_id}: the details are in {log}", file=sys.stderr)
    return summaries, failed


def post(files: Files, today: Today = None, as_json: Json = False) -> int:
    """Post 835 remittances to the append-only ledger: envelopes and balances checked first, then every
    payment, adjustment and denial posted against our claims and lines. A file posts once (content hash); a
    malformed file is quarantined, an unbalanced transaction held; a 999 or 277CA is refused (use acks load).

    Exit 3 when a file was quarantined or a transaction held; 2 when a file was refused.

    Examples:

    ```
    otedi remit post era_0001.835
    otedi remit post archive/*.835 --today 2026-11-14 --json
    ```
    """
    from otedi.acks.load import ACK_KINDS, transaction_set_of, wrong_command_message
    from otedi.remit.post import post_remittance_file

    accepted, refused = [], []
    for path in files:
        kind = transaction_set_of(path)
        refusal = wrong_command_message(path.name, kind, "otedi remit post", ACK_KINDS)
        if refusal:  # a 999/277CA: not recorded, so `otedi acks load` still loads it
            refused.append({"file": path.name, "kind": kind, "status": "refused", "message": refusal})
        else:
            accepted.append(path)
    for r in refused:
        warn(r["message"])
    summaries, failed = _each_file(accepted, post_remittance_file, "posting 835 files", today)
    code = exit_code(failed=bool(failed), refused=bool(refused), data=any(map(remittance_problem, summaries)))
    if as_json:
        emit_json(summaries + refused)
        return code
    if out_is_terminal() and summaries:
        show_table(["file", "status", "transactions", "matched", "unmatched", "paid", "contractual",
                    "patient resp.", "denied", "PLB", "BPR02"],
                   [[s["file"], s["status"], s["transactions"], s["claims_matched"], s["unmatched"],
                     s["totals"]["paid"], s["totals"]["contractual"], s["totals"]["patient_responsibility"],
                     s["totals"]["denied"], s["totals"]["plb"], s["totals"]["bpr02"]] for s in summaries],
                   title="835 posting", right=("transactions", "matched", "unmatched", "paid", "contractual",
                                               "patient resp.", "denied", "PLB", "BPR02"))
    for s in summaries:
        t = s["totals"]
        if not out_is_terminal():
            say(f"{s['file']}: {s['status']}" + (f" - {s['message']}" if s["message"] else ""))
        elif s["message"]:
            say(f"{s['file']}: {s['message']}")
        if s["transactions"]:
            if not out_is_terminal():
                say(f"  transactions {s['transactions']}, claims matched {s['claims_matched']}, "
                    f"unmatched {s['unmatched']}")
            if s["duplicate_claim_payments"] or s["predeterminations"]:
                say(f"  not posted: {s['duplicate_claim_payments']} payment(s) already posted under another trace, "
                    f"{s['predeterminations']} predetermination(s) (remittance exceptions: otedi report export)")
            if not out_is_terminal():
                say(f"  paid {t['paid']}  contractual {t['contractual']}  patient responsibility "
                    f"{t['patient_responsibility']}  other {t['other_adjustments']}  denied {t['denied']}  "
                    f"PLB {t['plb']}  BPR02 {t['bpr02']}")
        for held in s["held"]:
            say(f"  {held['status'].upper()} transaction {held['transaction']} (trace {held['trace_number']}): "
                f"{held['reason']}")
    return code


def load_acks(files: Files, today: Today = None, as_json: Json = False) -> int:
    """Load 999 and 277CA acknowledgments: a 999 is linked to our 837P file by its control numbers (a
    rejection marks every claim in the set rejected, with the errors in plain words), a 277CA to each claim
    (accepted with the payer's claim number, or rejected with the STC codes in words). An 835 is refused (use
    remit post).

    Exit 3 when a file was quarantined; 2 when a file was refused.

    Examples:

    ```
    otedi acks load ack_0001.999 ack_0002.277
    otedi acks load archive/*.999 --json
    ```
    """
    from otedi.acks.load import load_ack_file

    summaries, failed = _each_file(files, load_ack_file, "loading acknowledgments", today)
    refused = [s for s in summaries if s["status"] == "refused"]  # an 835: not recorded, `remit post` posts it
    for s in refused:
        warn(s["message"])
    code = exit_code(failed=bool(failed), refused=bool(refused), data=any(map(ack_problem, summaries)))
    if as_json:
        emit_json(summaries)
        return code
    shown = [s for s in summaries if s["status"] != "refused"]
    if out_is_terminal() and shown:
        show_table(["file", "kind", "status", "sets", "sets rejected", "claims accepted", "claims rejected",
                    "unmatched", "message"],
                   [[s["file"], s["kind"], s["status"], s["transaction_sets"], s["sets_rejected"],
                     s["claims_accepted"], s["claims_rejected"], len(s["unmatched"]), s["message"] or ""]
                    for s in shown], title="acknowledgments",
                   right=("sets", "sets rejected", "claims accepted", "claims rejected", "unmatched"))
        return code
    for s in shown:
        say(f"{s['file']} ({s['kind']}): {s['status']}" + (f" - {s['message']}" if s["message"] else ""))
        if s["status"] == "loaded":
            say(f"  sets {s['transaction_sets']} ({s['sets_rejected']} rejected), claims accepted "
                f"{s['claims_accepted']}, rejected {s['claims_rejected']}, unmatched {len(s['unmatched'])}")
    return code


def accept(file: Annotated[Path, typer.Argument(
               help="the quarantined 835 (the file posted before, by its content)", metavar="FILE", exists=True,
               dir_okay=False, readable=True)],
           note: Note, by: By = None, as_json: Json = False) -> int:
    """Post an 835 quarantined only for a faulty envelope (IEA02/GE02/SE02 control numbers, or BPR16 missing
    with DTM*405) whose every transaction balances to the cent, after a person looked at it (audited).
    Anything else is refused with its reason.

    Examples:

    ```
    otedi remit accept era_0042.835 --note "clearinghouse confirmed the IEA02 typo"
    ```
    """
    from otedi.actions.audit import actor
    from otedi.actions.remittances import accept_remittance

    def done(c: dict) -> str:
        held = f", {len(c['held'])} transaction(s) held or duplicate" if c["held"] else ""
        return (f"{c['file']}: accepted and {c['status'][1]} - {c['transactions']} transaction(s), "
                f"{c['claims_matched']} claim(s) matched, {c['unmatched']} unmatched, paid {c['paid']}, "
                f"BPR02 {c['bpr02']}{held}; waived: {', '.join(c['waived_codes'])}")

    return act(lambda session: accept_remittance(session, file, who=actor(by), note=note), done, as_json)


def match(clp_id: Annotated[str, typer.Argument(
              metavar="CLP01", help="the CLP01 the 835 carries (the reference in unmatched_remittances)")],
          claim: Annotated[str, typer.Option("--claim", help="our claim id it pays")],
          note: Note, by: By = None, as_json: Json = False) -> int:
    """Link an unmatched remittance claim payment (its CLP01 is not one of our claims, e.g. an old account
    number) to the claim it pays, and move its money onto that claim (audited; the ledger only grows).

    Examples:

    ```
    otedi remit match OLDPCN-B7 --claim OTA5HM52Z4RVSJVQK --note "old account number"
    ```
    """
    from otedi.actions.audit import actor
    from otedi.actions.remittances import match_remittance_claim

    def done(c: dict) -> str:
        paid = c["posted"].get("payment", "0.00")
        return (f"CLP01 {c['patient_control_number']} matched to claim {c['claim']}: {len(c['payments'])} "
                f"payment(s) moved onto it, paid {paid}; claim {c['status'][0]} -> {c['status'][1]}")

    return act(lambda session: match_remittance_claim(session, clp_id, claim_id=claim, who=actor(by), note=note),
                done, as_json)


def register(groups: dict[str, typer.Typer]) -> None:
    groups["remit"].command("post")(post)
    groups["remit"].command("accept")(accept)
    groups["remit"].command("match")(match)
    groups["acks"].command("load")(load_acks)
