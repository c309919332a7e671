"""`otedi claims build|review|release|void`, `otedi validate`, `otedi ar resubmit` (wiring only: otedi.outbound,
otedi.actions, otedi.claims.resubmit, otedi.x12.validate)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer

from otedi.cli_common import (DATA, OK, By, Json, Note, Today, act, emit_json, existing_file, out_folder,
                              out_is_terminal, rejected, say, show_issues, show_pairs, show_table, warehouse,
                              tracking, working)

ClaimId = Annotated[str, typer.Argument(help="the claim id (patient control number, CLM01)", metavar="CLAIM_ID")]
OutFolder = Annotated[Optional[Path], typer.Option(
    "--out", file_okay=False, help="folder for the 837P files (default $OTEDI_HOME/outbound)")]
Mapping = Annotated[Optional[str], typer.Option(
    "--mapping", help="column mapping of another EHR's layout, under mappings/extracts/ without .yaml "
                      "(e.g. webpt_style); default: the canonical layout")]


# --- claims build ------------------------------------------------------------------------------------------

def outbound_problem(summary: dict) -> bool:
    """The data half of the exit-code rule for a build: a row or line rejected, or a file quarantined."""
    return bool(summary["quarantined"]) or summary.get("rows_rejected", 0) > 0 or rejected(summary["issues"])


def print_outbound(summary: dict) -> None:
    """The issues list first (a biller's work list), then the totals and the files."""
    counts = Counter(i["severity"] for i in summary["issues"])
    show_issues(summary["issues"])
    if summary["issues"] and not out_is_terminal():
        say()
    if summary["already_loaded"]:
        say("extract already loaded: nothing new added")
    if out_is_terminal():
        show_pairs([("rows read", summary["rows"]), ("rows rejected", summary["rows_rejected"]),
                    ("claims in 837P files", summary["claims"]), ("lines", summary["lines"]),
                    ("claims held", summary["held_claims"]),
                    ("issues", f"{counts.get('reject', 0)} reject, {counts.get('hold', 0)} hold, "
                               f"{counts.get('warning', 0)} warning")], title="claims build", width=24)
    else:
        say(f"rows read            {summary['rows']:>7}   rows rejected  {summary['rows_rejected']:>6}")
        say(f"claims in 837P files {summary['claims']:>7}   lines          {summary['lines']:>6}")
        say(f"claims held          {summary['held_claims']:>7}")
        say(f"issues               {counts.get('reject', 0):>7} reject, {counts.get('hold', 0)} hold, "
            f"{counts.get('warning', 0)} warning")
    for path in summary["files"]:
        say(f"ready: {path}")
    for path in summary["quarantined"]:
        say(f"QUARANTINED: {path} (errors beside it in .errors.txt)")


def build(extract: Annotated[Path, existing_file("the charge extract: CSV, XLSX or Parquet", "EXTRACT")],
          out: OutFolder = None, mapping: Mapping = None, today: Today = None, as_json: Json = False) -> int:
    """Load an extract, code and scrub every new charge, build the claims and write them as 837P files, each
    checked by pyx12 before it counts as ready (a failing file goes to quarantine/ with its errors).

    Exit 3 when a row or line was rejected or a file quarantined; held claims wait for review (exit 0).

    Examples:

    ```
    otedi claims build EXTRACT.csv
    otedi claims build export.xlsx --mapping webpt_style --out outbound/ --json
    ```
    """
    from otedi.outbound import run_outbound

    warehouse(writes=True)
    folder = out_folder(out, "outbound")
    with tracking(f"loading {extract.name}, coding, scrubbing and writing 837P files through the 837P gate") as bar:
        result = run_outbound(extract, folder, mapping=mapping, today=today, progress=bar)
    summary = result.summary()
    if as_json:
        emit_json(summary)
    else:
        print_outbound(summary)
    return DATA if outbound_problem(summary) else OK


# --- held claims -------------------------------------------------------------------------------------------

def _pairs(values: list[str] | None, what: str) -> dict[int, list[str]]:
    """["2:59", "2:XU", "3:KX"] -> {2: ["59", "XU"], 3: ["KX"]}."""
    from otedi.actions.audit import ActionError

    out: dict[int, list[str]] = {}
    for value in values or []:
        line, sep, item = value.partition(":")
        if not sep or not (line.isascii() and line.isdigit()) or not item:
            raise ActionError(f"{what} takes LINE:VALUE (e.g. 2:59), not {value!r}")
        out.setdefault(int(line), []).append(item.strip().upper())
    return out


def review(claim_id: ClaimId, as_json: Json = False) -> int:
    """A claim with its lines, every issue found on it (the rules that held it) and the actions taken on it.
    Reads only.

    Examples:

    ```
    otedi claims review OTA5HM52Z4RVSJVQK
    otedi claims review OTA5HM52Z4RVSJVQK --json
    ```
    """
    from otedi.actions.audit import history
    from otedi.actions.held_claims import review as review_claim
    from otedi.warehouse import db

    warehouse(writes=False)
    with db.session_scope(readonly=True) as session:
        r = review_claim(session, claim_id)
        actions = [{"at": e.at, "by": e.actor, "action": e.action, "note": e.note}
                   for e in history(session, f"claim:{claim_id}")]
    if as_json:
        emit_json({**r.__dict__, "actions": actions})
        return OK
    say(f"claim {r.claim_id}  {r.status}  practice {r.practice_id}  payer {r.payer_id}  "
        f"{r.service_dates[0]}..{r.service_dates[1]}  {r.total_charge}")
    if out_is_terminal():
        show_table(["line", "date", "code", "modifiers", "units", "charge", "charge id"],
                   [[ln["line"], ln["service_date"], ln["cpt"], ln["modifiers"] or "-", ln["units"], ln["charge"],
                     ln["charge_id"]] for ln in r.lines], right=("units", "charge"))
        show_issues(r.issues, limit=None, title="issues")
        if actions:
            show_table(["at", "by", "action", "note"],
                       [[a["at"].isoformat(timespec="seconds"), a["by"], a["action"], a["note"]] for a in actions])
        return OK
    for ln in r.lines:
        say(f"  line {ln['line']}  {ln['service_date']}  {ln['cpt']} {ln['modifiers'] or '-'}  "
            f"{ln['units']} unit(s)  {ln['charge']}  (charge {ln['charge_id']})")
    for issue in r.issues:
        say(f"  {issue['severity'].upper():8} {issue['rule']:22} {issue['message']}")
    for a in actions:
        say(f"  {a['at'].isoformat(sep=' ', timespec='seconds')}  {a['by']}: {a['action']} - {a['note']}")
    return OK


def release(claim_id: ClaimId, note: Note,
            add_modifier: Annotated[Optional[list[str]], typer.Option(
                "--add-modifier", metavar="LINE:MOD",
                help="add a modifier the documentation supports to a line (59, XE, XS, XP, XU, KX, 76, 77; "
                     "repeatable)")] = None,
            units: Annotated[Optional[list[str]], typer.Option(
                "--units", metavar="LINE:N", help="set a line's units (its charge scales; repeatable)")] = None,
            by: By = None, as_json: Json = False) -> int:
    """Release a held claim into the next batch, with the modifiers and units a person set (audited).

    Examples:

    ```
    otedi claims release OTA5HM52Z4RVSJVQK --note "POC signed 02-20, scanned"
    otedi claims release OTA5HM52Z4RVSJVQK --note "distinct session" --add-modifier 1:59 --units 2:3
    ```
    """
    from otedi.actions.audit import ActionError, actor
    from otedi.actions.held_claims import release as release_claim

    line_units = {}
    for line, values in _pairs(units, "--units").items():
        if not (values[-1].isascii() and values[-1].isdigit()):
            raise ActionError(f"--units takes LINE:N with N a whole number, not {line}:{values[-1]}")
        line_units[line] = int(values[-1])
    modifiers = _pairs(add_modifier, "--add-modifier")
    return act(lambda session: release_claim(session, claim_id, who=actor(by), note=note,
                                              add_modifiers=modifiers, units=line_units),
                f"claim {claim_id} released into the next batch", as_json)


def void(claim_id: ClaimId, note: Note, by: By = None, as_json: Json = False) -> int:
    """Void a held claim: it is kept on record with its charges and never billed (audited).

    Examples:

    ```
    otedi claims void OTA5HM52Z4RVSJVQK --note "billed by hand last week"
    ```
    """
    from otedi.actions.audit import actor
    from otedi.actions.held_claims import void as void_claim

    return act(lambda session: void_claim(session, claim_id, who=actor(by), note=note),
                f"claim {claim_id} voided: it will not be billed", as_json)


# --- validate ----------------------------------------------------------------------------------------------

def validate(file: Annotated[Path, existing_file("an X12 file (837P, 837I, 835, 999)")],
             details: Annotated[bool, typer.Option(
                 "--details",
                 help="add the validator's own text to each error (it may quote values from the file)")] = False,
             gate: Annotated[Optional[str], typer.Option(
                 "--gate", help="otedi (pyx12's verdict, compiled from its maps; hands non-837P files to pyx12) "
                                "or pyx12; default: the OTEDI_GATE setting, else otedi")] = None,
             as_json: Json = False) -> int:
    """Validate any X12 file against its implementation guide: each error with its segment number, segment, loop
    and element, in plain words.

    Exit 3 when the file is invalid.

    Examples:

    ```
    otedi validate outbound/BRIGHTHANDS_DEMOCH_000000001.837
    otedi validate era.835 --json
    ```
    """
    from otedi.errors import ConfigError
    from otedi.x12.gate import gate_for

    try:
        validate_file = gate_for(gate)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--gate") from None
    with working(f"validating {file.name}"):
        report = validate_file(file)
    if as_json:
        errors = []
        for p in report.errors:
            error = {"segment_number": p.segment_number, "segment_id": p.segment_id, "loop_id": p.loop_id,
                     "element": p.element, "code": p.code, "message": p.message}
            if details:
                error["detail"] = p.detail
            errors.append(error)
        emit_json({"file": report.path, "valid": report.ok, "segments": report.segments,
                   "bom_stripped": report.bom_stripped, "errors": errors})
    else:
        print(report.to_text(with_details=details), end="")
    return OK if report.ok else DATA


# --- ar resubmit -------------------------------------------------------------------------------------------

KINDS = {"resubmission": "new claim", "replacement": "replacement", "void": "void", "secondary": "secondary"}


def _show_plan(summary: dict, verb: str, claims: list[dict]) -> None:
    if out_is_terminal():
        rows = [[verb, c["original_claim_id"], c["claim_id"], f"{KINDS[c['kind']]} ({c['frequency_code']})",
                 c["payer_id"], c.get("amount", ""), c.get("reason", "")] for c in claims]
        rows += [["already", b["original_claim_id"], b["claim_id"], b["kind"], "", "", "built before"]
                 for b in summary["already_built"]]
        if rows:
            show_table(["", "claim", "new claim", "kind (frequency)", "payer", "amount", "why"], rows,
                       right=("amount",))
        if summary["work_items"]:
            show_table(["claim", "reason", "next step"],
                       [[i["claim_id"], i["reason"], i["next_step"]] for i in summary["work_items"]], title="to do")
        return
    for c in claims:
        say(f"{verb:<12} {c['original_claim_id']} -> {c['claim_id']}  {KINDS[c['kind']]} (frequency "
            f"{c['frequency_code']})  payer {c['payer_id']}  {c.get('amount', '')}  {c.get('reason', '')}")
    for b in summary["already_built"]:
        say(f"{'already':<12} {b['original_claim_id']} -> {b['claim_id']}  {b['kind']}: built before")
    for item in summary["work_items"]:
        say(f"{'to do':<12} {item['claim_id']}: {item['reason']} - {item['next_step']}")


def resubmit(claim: Annotated[Optional[list[str]], typer.Option(
                 "--claim", help="a corrected claim to resubmit (repeatable); default: every one due")] = None,
             void_ids: Annotated[Optional[list[str]], typer.Option(
                 "--void", help="a claim to cancel with a void, frequency 8 (repeatable)")] = None,
             secondary: Annotated[bool, typer.Option("--secondary", help="build the secondary claims that are due")]
             = False,
             yes: Annotated[bool, typer.Option(
                 "--yes", help="build them (without it: show what would be built, and why; nothing is written)")]
             = False,
             note: Annotated[Optional[str], typer.Option(
                 "--note", help="why (recorded in the audit trail; required with --yes unless --secondary alone)")]
             = None,
             by: By = None, out: OutFolder = None, today: Today = None, as_json: Json = False) -> int:
    """Corrected (frequency 7), void (8), new (1, for a rejected claim) and secondary claims. Without --yes a
    dry run: what would be built, for how much and why, writing nothing; with --yes exactly that is built
    (audited) and written through the 837P gate.

    Exit 3 when a file was quarantined.

    Examples:

    ```
    otedi ar resubmit
    otedi ar resubmit --claim OTA5HM52Z4RVSJVQK --yes --note "auth number added"
    otedi ar resubmit --secondary --yes --json
    ```
    """
    from datetime import date

    from otedi.actions.audit import ActionError, actor
    from otedi.claims.batch import write_ready_claims
    from otedi.claims.resubmit import plan_resubmissions, resubmit as build_resubmissions
    from otedi.warehouse import db, models

    picked = claim or None
    if picked is None and (void_ids or secondary):
        picked = ()  # only what was asked for
    day = today or date.today()
    asked = dict(today=day, claim_ids=picked, void_ids=void_ids or (), secondary=secondary)
    needs_note = bool(claim or void_ids or not secondary)  # corrections or voids: a person's call

    if not yes:
        warehouse(writes=False)
        with db.session_scope(readonly=True) as session:
            plan = plan_resubmissions(session, **asked)  # writes nothing
        summary = {"dry_run": True, **plan.summary()}
        if as_json:
            emit_json(summary)
            return OK
        _show_plan(summary, "would build", summary["would_build"])
        count = len(summary["would_build"])
        say(f"nothing built: run again with --yes{' --note WHY' if needs_note else ''} to build the {count} "
            f"claim(s) above" if count else "nothing to build")
        return OK
    who = actor(by)
    if needs_note and not (note or "").strip():
        raise ActionError("say why in --note: corrected and void claims are recorded with their reason "
                          "(--secondary alone may go without)")
    warehouse(writes=True)
    folder = out_folder(out, "outbound")
    with working("building the claims"), models.stamped_as_of(day), db.session_scope() as session:
        result = build_resubmissions(session, **asked, who=who, note=note)
    with tracking("writing 837P files through the 837P gate") as bar, models.stamped_as_of(day), \
            db.session_scope() as session:
        files = write_ready_claims(session, folder, today=day, progress=bar)
    summary = {"dry_run": False, **result.summary(), "files": [f.path for f in files if f.status == "ready"],
               "quarantined": [f.path for f in files if f.status != "ready"]}
    code = DATA if summary["quarantined"] else OK
    if as_json:
        emit_json(summary)
        return code
    _show_plan(summary, "built", summary["built"])
    for path in summary["files"]:
        say(f"ready: {path}")
    for path in summary["quarantined"]:
        say(f"QUARANTINED: {path} (errors beside it in .errors.txt)")
    return code


def register(groups: dict[str, typer.Typer], app: typer.Typer) -> None:
    groups["claims"].command("build")(build)
    groups["claims"].command("review")(review)
    groups["claims"].command("release")(release)
    groups["claims"].command("void")(void)
    groups["ar"].command("resubmit")(resubmit)
    app.command("validate")(validate)
