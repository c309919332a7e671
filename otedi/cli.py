"""The `otedi` command. Area verbs live beside it: cli_claims (held claims), cli_accounts (patient
accounts, write-offs, appeals, work items), cli_remit (remittance exceptions).

  otedi db upgrade
  otedi charges load FILE [--mapping NAME] [--json]
  otedi charges therapy-usage FILE [--json]     (therapy used at other providers this year, for KX)
  otedi claims build EXTRACT --out DIR [--mapping NAME] [--json]
  otedi claims review ID | release ID --note N [--add-modifier LINE:MOD] [--units LINE:N] | void ID --note N
  otedi patient pay|refund --practice P --patient ID --amount A --method M --reference R [--date D]
  otedi patient import FILE [--mapping NAME] | statements --as-of D --out DIR | balance --practice P --patient ID
  otedi remit post FILE... [--json]
  otedi remit accept FILE --note N | match CLP01 --claim ID --note N
  otedi acks load FILE... [--json]
  otedi report export --format csv|parquet --out DIR
  otedi report html --out FILE
  otedi ar worklist [--all] [--json]
  otedi ar item CLAIM:REASON --state open|in_progress|waiting|done --note N
  otedi ar resubmit [--claim ID ...] [--void ID ...] [--secondary] [--yes --note N] [--out DIR] [--json]
  otedi ar adjust --claim ID --amount A --reason KEY --note N | approve|decline ADJ-ID --note N
  otedi ar appeal ID --out DIR --note N
  otedi validate FILE [--json]
  otedi synth charges --rows N --seed S --out FILE [--defect-rate R] [--start DATE] [--days N]
  otedi simulate --drop URL [--seed S] [--key-file KEY] [--eligibility-from FILE ...]
  otedi drop send DIR|FILE --to URL [--json]
  otedi drop fetch --from URL [--archive DIR] [--ingest] [--json]
  otedi run [--extract FILE] [--drop URL] [--today DATE] [--follow-up-days N]

Every biller's action takes --note (why) and --by (who; default OTEDI_USER, else the login name).
Output names ids, codes, counts and amounts only: never patient names,
birth dates or member ids.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from otedi import cli_accounts, cli_claims, config
from otedi import cli_remit
from otedi.errors import OtediError

log = logging.getLogger("otedi")


def _issue_lines(issues: list[dict], limit: int | None = 50) -> list[str]:
    order = {"reject": 0, "hold": 1, "warning": 2}
    shown = sorted(issues, key=lambda i: (order.get(i["severity"], 3), i.get("claim_id") or "", i.get("charge_id") or ""))
    lines = []
    for i in shown[:limit] if limit else shown:
        where = " ".join(x for x in (
            f"row {i['row']}" if i.get("row") is not None else "",
            f"claim {i['claim_id']}" if i.get("claim_id") else "",
            f"charge {i['charge_id']}" if i.get("charge_id") else "",
        ) if x)
        lines.append(f"  {i['severity'].upper():8} {i['rule']:22} {where}: {i['message']}")
    if limit and len(shown) > limit:
        lines.append(f"  ... {len(shown) - limit} more (use --json for the full list)")
    return lines


def _print_outbound(summary: dict) -> None:
    """The issues list first (a biller's work list), then the totals."""
    counts = Counter(i["severity"] for i in summary["issues"])
    if summary["issues"]:
        print("issues (reject: line not billed; hold: claim kept back for review; warning: sent, note it):")
        print("\n".join(_issue_lines(summary["issues"])))
        print()
    if summary["already_loaded"]:
        print("extract already loaded: nothing new added")
    print(f"rows read            {summary['rows']:>7}   rows rejected  {summary['rows_rejected']:>6}")
    print(f"claims in 837P files {summary['claims']:>7}   lines          {summary['lines']:>6}")
    print(f"claims held          {summary['held_claims']:>7}")
    print(f"issues               {counts.get('reject', 0):>7} reject, {counts.get('hold', 0)} hold, "
          f"{counts.get('warning', 0)} warning")
    for path in summary["files"]:
        print(f"ready: {path}")
    for path in summary["quarantined"]:
        print(f"QUARANTINED: {path} (errors beside it in .errors.txt)")


def cmd_db_upgrade(args) -> int:
    from otedi.warehouse import db
    db.upgrade()
    print(f"warehouse at {_safe_url()} is up to date")
    return 0


def _safe_url() -> str:
    from sqlalchemy import make_url
    return make_url(config.database_url()).render_as_string(hide_password=True)


def cmd_charges_load(args) -> int:
    from otedi.charges.load import load_extract
    from otedi.warehouse import db
    db.upgrade()
    # a concurrent twin loading the same file loses on a lock or a key and retries, finding it loaded
    result = db.in_own_transaction(lambda session: load_extract(session, args.file, args.mapping),
                                   what=Path(args.file).name)
    issues = [i.as_dict() for i in result.issues]
    if args.json:
        print(json.dumps({"file": result.file, "sha256": result.sha256, "already_loaded": result.already_loaded,
                          "rows": result.rows, "loaded": result.accepted, "rejected": result.rejected,
                          "duplicates": result.duplicates, "issues": issues}, indent=2))
    elif result.already_loaded:
        print(f"{result.file}: already loaded (same content); nothing added")
    else:
        print(f"{result.file}: {result.rows} rows, {result.accepted} loaded, {result.rejected} rejected, "
              f"{result.duplicates} already in the warehouse")
        print("\n".join(_issue_lines(issues)))
    return 0


def cmd_charges_therapy_usage(args) -> int:
    from otedi.charges.therapy_usage import load_therapy_usage
    from otedi.warehouse import db
    db.upgrade()
    result = db.in_own_transaction(lambda session: load_therapy_usage(session, args.file),
                                   what=Path(args.file).name)
    issues = [i.as_dict() for i in result.issues]
    if args.json:
        print(json.dumps({"file": result.file, "rows": result.rows, "loaded": result.loaded,
                          "already_known": result.already_known, "rejected": result.rejected,
                          "issues": issues}, indent=2))
    else:
        print(f"{result.file}: {result.rows} rows, {result.loaded} loaded, {result.already_known} already known, "
              f"{result.rejected} rejected")
        print("\n".join(_issue_lines(issues)))
    return 0


def cmd_claims_build(args) -> int:
    from otedi.outbound import run_outbound
    from otedi.warehouse import db
    db.upgrade()
    result = run_outbound(args.extract, args.out, mapping=args.mapping)
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_outbound(summary)
    return 1 if summary["quarantined"] else 0


def _each_file(files: list[str], load) -> tuple[list[dict], int]:
    """Load each file in its own transaction (one bad file never undoes another), retrying what the
    database can cure; the summaries, and how many files failed for good (each told in one line)."""
    from sqlalchemy.exc import SQLAlchemyError

    from otedi.warehouse import db
    db.upgrade()
    summaries, failed = [], 0
    for path in files:
        try:
            summaries.append(db.in_own_transaction(lambda session: load(session, path).summary(),
                                                   what=Path(path).name))
        except SQLAlchemyError as exc:
            failed += 1
            print(f"otedi: {Path(path).name}: {_database_failure(exc)}; nothing of this file was committed - "
                  f"run the command again", file=sys.stderr)
    return summaries, failed


def _database_failure(exc) -> str:
    """One line about a database error: its class and the driver's first line, never the statement's values."""
    orig = getattr(exc, "orig", None)
    first = str(orig or exc).strip().splitlines()[0] if str(orig or exc).strip() else ""
    return f"the warehouse database failed ({type(orig or exc).__name__}: {first[:160]})"


def cmd_remit_post(args) -> int:
    from otedi.acks.load import ACK_KINDS, transaction_set_of, wrong_command_message
    from otedi.remit.post import post_remittance_file
    files, refused = [], []
    for path in args.files:
        kind = transaction_set_of(Path(path))
        refusal = wrong_command_message(Path(path).name, kind, "otedi remit post", ACK_KINDS)
        if refusal:  # a 999/277CA: not recorded, so `otedi acks load` still loads it
            refused.append({"file": Path(path).name, "kind": kind, "status": "refused", "message": refusal})
        else:
            files.append(path)
    for r in refused:
        print(f"otedi: {r['message']}", file=sys.stderr)
    summaries, failed = _each_file(files, post_remittance_file)
    if args.json:
        print(json.dumps(summaries + refused, indent=2))
        return 1 if refused or failed else 0
    for s in summaries:
        t = s["totals"]
        print(f"{s['file']}: {s['status']}" + (f" - {s['message']}" if s["message"] else ""))
        if s["transactions"]:
            print(f"  transactions {s['transactions']}, claims matched {s['claims_matched']}, "
                  f"unmatched {s['unmatched']}")
            if s["duplicate_claim_payments"] or s["predeterminations"]:
                print(f"  not posted: {s['duplicate_claim_payments']} payment(s) already posted under another trace, "
                      f"{s['predeterminations']} predetermination(s) (remittance exceptions: otedi report export)")
            print(f"  paid {t['paid']}  contractual {t['contractual']}  patient responsibility "
                  f"{t['patient_responsibility']}  other {t['other_adjustments']}  denied {t['denied']}  "
                  f"PLB {t['plb']}  BPR02 {t['bpr02']}")
        for held in s["held"]:
            print(f"  {held['status'].upper()} transaction {held['transaction']} (trace {held['trace_number']}): "
                  f"{held['reason']}")
    return 1 if refused or failed else 0


def cmd_acks_load(args) -> int:
    from otedi.acks.load import load_ack_file
    summaries, failed = _each_file(args.files, load_ack_file)
    refused = [s for s in summaries if s["status"] == "refused"]  # an 835: not recorded, `remit post` posts it
    for s in refused:
        print(f"otedi: {s['message']}", file=sys.stderr)
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 1 if refused or failed else 0
    for s in summaries:
        if s["status"] == "refused":
            continue
        print(f"{s['file']} ({s['kind']}): {s['status']}" + (f" - {s['message']}" if s["message"] else ""))
        if s["status"] == "loaded":
            print(f"  sets {s['transaction_sets']} ({s['sets_rejected']} rejected), claims accepted "
                  f"{s['claims_accepted']}, rejected {s['claims_rejected']}, unmatched {len(s['unmatched'])}")
    return 1 if refused or failed else 0


def _today(args) -> date:
    return date.fromisoformat(args.today) if getattr(args, "today", None) else date.today()


def cmd_report_export(args) -> int:
    from otedi.analytics import export_tables
    from otedi.warehouse import db
    db.upgrade()
    for path in export_tables(args.out, args.format, today=_today(args)):
        print(path)
    return 0


def cmd_report_html(args) -> int:
    from otedi.analytics import write_html_report
    from otedi.warehouse import db
    db.upgrade()
    print(write_html_report(args.out, today=_today(args)))
    return 0


def cmd_ar_worklist(args) -> int:
    from otedi.analytics import work_queue
    from otedi.warehouse import db
    db.upgrade()
    queue = work_queue(today=_today(args))
    if not args.all:
        queue = queue[queue["state"] != "done"]
    if args.json:
        print(queue.to_json(orient="records", date_format="iso", default_handler=str, indent=2))
        return 0
    if queue.empty:
        print("nothing to work")
        return 0
    for item in queue.itertuples():
        state = "" if item.state == "open" else f"[{item.state} - {item.state_by}: {item.state_note}] "
        print(f"{item.reason:<26} {item.claim_id}  {item.payer_name[:24]:<24} ${item.amount:>9}  {state}"
              f"{item.next_step}")
    print(f"{len(queue)} item(s)")
    return 0


def cmd_ar_resubmit(args) -> int:
    """Without --yes: what would be built, why and for how much; nothing is built. With --yes: build exactly
    that (one audit row per claim), then write the ready claims through the pyx12 gate."""
    from otedi.actions.audit import ActionError, actor
    from otedi.claims.batch import write_ready_claims
    from otedi.claims.resubmit import plan_resubmissions, resubmit
    from otedi.warehouse import db
    picked = args.claim or None
    if picked is None and (args.void or args.secondary):
        picked = ()  # only what was asked for
    asked = dict(today=_today(args), claim_ids=picked, void_ids=args.void or (), secondary=args.secondary)
    needs_note = bool(args.claim or args.void or not args.secondary)  # corrections or voids: a person's call

    def show(summary: dict, verb: str, claims: list[dict]) -> None:
        kinds = {"resubmission": "new claim", "replacement": "replacement", "void": "void", "secondary": "secondary"}
        for c in claims:
            print(f"{verb:<12} {c['original_claim_id']} -> {c['claim_id']}  {kinds[c['kind']]} (frequency "
                  f"{c['frequency_code']})  payer {c['payer_id']}  {c.get('amount', '')}  {c.get('reason', '')}")
        for b in summary["already_built"]:
            print(f"{'already':<12} {b['original_claim_id']} -> {b['claim_id']}  {b['kind']}: built before")
        for item in summary["work_items"]:
            print(f"{'to do':<12} {item['claim_id']}: {item['reason']} - {item['next_step']}")

    if not args.yes:
        db.upgrade()
        with db.session_scope() as session:
            plan = plan_resubmissions(session, **asked)  # writes nothing
        summary = {"dry_run": True, **plan.summary()}
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
            return 0
        show(summary, "would build", summary["would_build"])
        count = len(summary["would_build"])
        print(f"nothing built: run again with --yes{' --note WHY' if needs_note else ''} to build the {count} "
              f"claim(s) above" if count else "nothing to build")
        return 0
    who = actor(args.by)
    if needs_note and not (args.note or "").strip():
        raise ActionError("say why in --note: corrected and void claims are recorded with their reason "
                          "(--secondary alone may go without)")
    db.upgrade()
    with db.session_scope() as session:
        result = resubmit(session, **asked, who=who, note=args.note)
    out = Path(args.out) if args.out else config.home() / "outbound"
    with db.session_scope() as session:
        files = write_ready_claims(session, out)
    summary = {"dry_run": False, **result.summary(), "files": [f.path for f in files if f.status == "ready"],
               "quarantined": [f.path for f in files if f.status != "ready"]}
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    show(summary, "built", summary["built"])
    for path in summary["files"]:
        print(f"ready: {path}")
    return 1 if summary["quarantined"] else 0


def cmd_validate(args) -> int:
    from otedi.x12.validate import validate_file
    report = validate_file(args.file)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.to_text())
    return 0 if report.ok else 1


def cmd_synth_charges(args) -> int:
    from otedi.charges.synth import synth_charges
    rows = synth_charges(args.rows, args.seed, args.out, defect_rate=args.defect_rate,
                         start=date.fromisoformat(args.start), days=args.days)
    print(f"wrote {rows} charge rows to {args.out}")
    return 0


def cmd_run(args) -> int:
    """The main job on embedded defaults: one full cycle against the built-in simulator."""
    from otedi.cycle import run_cycle
    from otedi.simulator import simulate_once
    from otedi.warehouse import db
    extract = Path(args.extract)
    home = config.home()
    drop = home / "drop"
    drop_url = args.drop or f"file://{drop}"
    today = date.fromisoformat(args.today) if args.today else _night_after(extract, args.mapping)
    print(f"warehouse: {_safe_url()}\nextract:   {extract}\ndrop:      {drop_url}\n"
          f"date:      {today} (the night after the extract's last date of service; --today changes it)",
          file=sys.stderr)
    db.upgrade()
    nights = [today] + ([today + timedelta(days=args.follow_up_days)] if args.follow_up_days else [])
    results = []
    for night in nights:
        if results:
            print(f"... {args.follow_up_days} days later, {night}: the payers' later answers (delayed payments, "
                  f"Medicaid's crossover 835s, adjudications after predeterminations, the secondary claims)",
                  file=sys.stderr)
        # The simulated Medicare learns who is dual eligible from the extract (otedi.simulator.eligibility).
        answer = None if args.no_simulator else (lambda night=night: simulate_once(
            drop, seed=args.seed, today=night, eligibility_from=[(extract, args.mapping)]))
        results.append(run_cycle(None if results else extract, drop_url=drop_url, out_dir=home / "outbound",
                                 archive_dir=home / "archive", today=night, mapping=args.mapping, answer=answer,
                                 progress=lambda step: print(f"... {step}", file=sys.stderr)))
    summary = results[0].outbound.summary()
    print("\n".join(_issue_lines(summary["issues"], limit=args.issues)))
    t = results[-1].totals
    rows = [
        ("charge rows read / rejected", "extract already loaded" if summary["already_loaded"]
         else f"{summary['rows']} / {summary['rows_rejected']}"),
        ("claims held for review", summary["held_claims"]),
        ("837P files sent", sum(r.sent for r in results)),
        ("claims sent", t["claims_sent"]),
        ("claims accepted", t["claims_accepted"]),
        ("claims rejected", t["claims_rejected"]),
        ("files fetched", sum(r.fetched for r in results)),
        ("secondary claims built", sum(r.secondary_built for r in results)),
        ("billed", f"{t['billed']:,.2f}"),
        ("paid", f"{t['paid']:,.2f}"),
        ("contractual", f"{t['contractual']:,.2f}"),
        ("patient responsibility", f"{t['patient_responsibility']:,.2f}"),
        ("other adjustments", f"{t['other_adjustments']:,.2f}"),
        ("denied", f"{t['denied']:,.2f}"),
        ("still open", f"{t['still_open']:,.2f}"),
        ("claims crossed over by the payer", t["claims_crossed_over"]),
        ("paid by the crossover payers", f"{t['crossover_paid']:,.2f}"),
        ("QMB cost sharing written off", sum(len(r.ingest.qmb_written_off) for r in results)),
    ]
    print()
    for label, value in rows:
        print(f"{label:<36}{value:>16}")
    print("\nclaims by status: " + ", ".join(f"{k} {v}" for k, v in t["claims_by_status"].items()))
    from otedi.analytics import write_html_report
    report = write_html_report(home / "report.html", today=nights[-1])
    print(f"files: {home}/outbound (837P), {home}/archive (999, 277CA, 835)")
    print(f"report: {report}  (finance tables: otedi report export --out DIR; work queue: otedi ar worklist)")
    return 0


def cmd_simulate(args) -> int:
    from otedi.simulator import simulate_once
    today = date.fromisoformat(args.today) if args.today else date.today()
    result = simulate_once(args.drop, seed=args.seed, today=today, key_file=args.key_file,
                           eligibility_from=args.eligibility_from)
    print(f"answered {len(result.files_answered)} file(s): {len(result.acks_999)} 999, {len(result.acks_277ca)} 277CA, "
          f"{len(result.remittances)} 835; claims held back for later {result.held_claims}; "
          f"predeterminations {result.predeterminations}; crossed over to Medicaid {result.crossed_over}, "
          f"Medicaid's answers waiting {result.crossovers_waiting}")
    return 0


def _open_drop(url: str, key_file: str | None):
    from otedi.transport import open_drop
    return open_drop(url, key_file=key_file)


def cmd_drop_send(args) -> int:
    from dataclasses import asdict

    from otedi.clearinghouse import send_files
    from otedi.warehouse import db
    db.upgrade()
    path = Path(args.path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    with _open_drop(args.to, args.key_file) as drop, db.session_scope() as session:
        out = [{k: v for k, v in asdict(o).items() if v is not None} for o in send_files(session, drop, files)]
    if args.json:
        print(json.dumps({"files": out}, indent=2))
    else:
        for item in out:
            print(f"{item['status']:<22} {item['file']}")
    return 0


def cmd_drop_fetch(args) -> int:
    from otedi.clearinghouse import fetch_inbound, ingest_fetched
    from otedi.warehouse import db
    db.upgrade()
    archive = Path(args.archive) if args.archive else config.home() / "archive"
    with _open_drop(args.source, args.key_file) as drop, db.session_scope() as session:
        fetched = fetch_inbound(session, drop, archive)
        rows = [{"remote_name": f.remote_name, "kind": f.kind, "size": f.size, "sha256": f.sha256,
                 "archive_path": f.archive_path} for f in fetched]
    ingested = None
    if args.ingest:
        with db.session_scope() as session:
            result = ingest_fetched(session)
        ingested = {"acks": result.acks, "remittances": result.remittances, "skipped": result.skipped,
                    "failed": result.failed, "qmb_written_off": [vars(w) | {"amount": str(w.amount), "patient_paid":
                                                                 str(w.patient_paid)} for w in result.qmb_written_off]}
        for name in result.failed:
            print(f"otedi: {name}: the warehouse database failed while loading it; rolled back - the next "
                  f"`otedi drop fetch --ingest` loads it", file=sys.stderr)
    if args.json:
        print(json.dumps({"fetched": rows, "ingested": ingested}, indent=2))
    else:
        for r in rows:
            print(f"{r['kind']:<8} {r['remote_name']} -> {r['archive_path']}")
        print(f"{len(rows)} new file(s)")
        if ingested:
            print(f"QMB cost sharing written off on {len(result.qmb_written_off)} claim(s)"
                  + (f"; payments returned to credit, to refund: {', '.join(result.qmb_refund_due)}"
                     if result.qmb_refund_due else ""))
    return 1 if ingested and ingested["failed"] else 0


def _night_after(extract: Path, mapping: str | None) -> date:
    """The demo replays the sample as the nightly run after its last date of service would see it."""

    from otedi.charges.extract import read_extract
    dates = [date.fromisoformat(d) for d in read_extract(extract, mapping)["service_date"] if _is_iso(d)]
    return (max(dates) + timedelta(days=1)) if dates else date.today()


def _is_iso(value: str) -> bool:
    try:
        date.fromisoformat(value)
        return True
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otedi", description="Occupational-therapy billing over X12 EDI")
    parser.add_argument("-q", "--quiet", action="store_true", help="show warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True)

    p_db = sub.add_parser("db", help="warehouse schema").add_subparsers(dest="action", required=True)
    p_db.add_parser("upgrade", help="create or migrate the warehouse schema").set_defaults(func=cmd_db_upgrade)

    p_ch = sub.add_parser("charges", help="charge-entry extracts").add_subparsers(dest="action", required=True)
    p = p_ch.add_parser("load", help="load an extract (CSV, XLSX or Parquet) into the warehouse")
    p.add_argument("file")
    p.add_argument("--mapping", help="column mapping under mappings/extracts/ (without .yaml)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_charges_load)
    p = p_ch.add_parser("therapy-usage", help="import therapy amounts used at other providers this year (KX)")
    p.add_argument("file", help="CSV: patient_id,year,bucket (OT|PT_SLP),amount,as_of,source")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_charges_therapy_usage)

    cli_accounts.register_patient(sub)

    p_cl = sub.add_parser("claims", help="claims").add_subparsers(dest="action", required=True)
    p = p_cl.add_parser("build", help="load, scrub, build and validate 837P files")
    p.add_argument("extract")
    p.add_argument("--out", required=True, help="folder for the 837P files")
    p.add_argument("--mapping")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_claims_build)
    cli_claims.register(p_cl)

    p_re = sub.add_parser("remit", help="835 remittances").add_subparsers(dest="action", required=True)
    p = p_re.add_parser("post", help="post 835 files to the ledger")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_remit_post)
    cli_remit.register(p_re)

    p_ak = sub.add_parser("acks", help="999 and 277CA acknowledgments").add_subparsers(dest="action", required=True)
    p = p_ak.add_parser("load", help="load 999/277CA files and update claim status")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_acks_load)

    p_rp = sub.add_parser("report", help="finance tables and the HTML report").add_subparsers(
        dest="action", required=True)
    p = p_rp.add_parser("export", help="write reconciliation, AR and denial tables")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--out", required=True)
    p.add_argument("--today")
    p.set_defaults(func=cmd_report_export)
    p = p_rp.add_parser("html", help="write one self-contained HTML report")
    p.add_argument("--out", required=True)
    p.add_argument("--today")
    p.set_defaults(func=cmd_report_html)

    p_ar = sub.add_parser("ar", help="AR follow-up").add_subparsers(dest="action", required=True)
    cli_accounts.register_ar(p_ar)
    p = p_ar.add_parser("worklist", help="claims needing action, with the next step")
    p.add_argument("--json", action="store_true")
    p.add_argument("--today")
    p.add_argument("--all", action="store_true", help="also the items a biller marked done")
    p.set_defaults(func=cmd_ar_worklist)
    p = p_ar.add_parser("resubmit", help="corrected (7), void (8), new and secondary claims")
    p.add_argument("--claim", action="append", help="a corrected claim to resubmit (repeatable); default: all due")
    p.add_argument("--void", action="append", help="a claim to cancel (repeatable)")
    p.add_argument("--secondary", action="store_true", help="build the secondary claims that are due")
    p.add_argument("--yes", action="store_true", help="build them (without it: show what would be built, and why)")
    p.add_argument("--note", help="why (recorded in the audit trail; required with --yes unless --secondary alone)")
    p.add_argument("--by", help="who acts (default: OTEDI_USER, else the login name)")
    p.add_argument("--out", help="folder for the 837P files (default $OTEDI_HOME/outbound)")
    p.add_argument("--today")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ar_resubmit)

    p = sub.add_parser("validate", help="validate any X12 file with pyx12")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)

    p_sy = sub.add_parser("synth", help="synthetic data").add_subparsers(dest="action", required=True)
    p = p_sy.add_parser("charges", help="write a realistic synthetic charge extract")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--defect-rate", type=float, default=0.0, help="share of rows given a realistic defect")
    p.add_argument("--start", default="2026-01-05", help="first possible date of service (ISO)")
    p.add_argument("--days", type=int, default=300, help="dates of service fall within this many days")
    p.set_defaults(func=cmd_synth_charges)

    p = sub.add_parser("simulate", help="answer 837P files in a drop as a clearinghouse and payers would")
    p.add_argument("--drop", required=True, help="folder, file:// or sftp:// URL of the drop")
    p.add_argument("--key-file", help="private key for an sftp:// drop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--today", help="the simulator's date (ISO); default today")
    p.add_argument("--eligibility-from", action="append", default=[], metavar="FILE",
                   help="a charge extract (canonical layout) whose patients with a Medicare primary and a Medicaid "
                        "secondary are dual eligible: Medicare crosses their claims over (repeatable)")
    p.set_defaults(func=cmd_simulate)

    p_dr = sub.add_parser("drop", help="clearinghouse drop (file:// or sftp://)").add_subparsers(
        dest="action", required=True)
    p = p_dr.add_parser("send", help="upload 837P files (atomic, never twice)")
    p.add_argument("path", help="a file or a folder of files")
    p.add_argument("--to", required=True, help="file:///path or sftp://user@host:port/path?host_key=...")
    p.add_argument("--key-file", help="private key for sftp://")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_drop_send)
    p = p_dr.add_parser("fetch", help="download new inbound files into the archive")
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--key-file")
    p.add_argument("--archive", help="archive folder (default $OTEDI_HOME/archive)")
    p.add_argument("--ingest", action="store_true", help="also load the 999/277CA and post the 835s")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_drop_fetch)

    p = sub.add_parser("run", help="run the main job (a full cycle) on embedded defaults")
    p.add_argument("--extract", default=str(config.REPO_ROOT / "sample_edi" / "charges_sample.csv"))
    p.add_argument("--mapping")
    p.add_argument("--drop", help="drop URL (default file://$OTEDI_HOME/drop)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed")
    p.add_argument("--no-simulator", action="store_true", help="a real clearinghouse answers instead")
    p.add_argument("--issues", type=int, default=20, help="how many issues to list")
    p.add_argument("--today", help="treat this ISO date as today")
    p.add_argument("--follow-up-days", type=int, default=0, metavar="N",
                   help="then run the next cycle N days later too, without a new extract (what the payers "
                        "answer later: delayed payments, crossovers, secondary claims); make demo uses 35")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema upgrades on every command stay quiet
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return args.func(args)
    except OtediError as exc:
        print(f"otedi: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # a lost connection, a lock held too long, a server refusing
        print(f"otedi: {_database_failure(exc)}; what the command had not committed was rolled back - "
              f"run it again", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
