"""The `otedi` command.

  otedi db upgrade
  otedi charges load FILE [--mapping NAME] [--json]
  otedi claims build EXTRACT --out DIR [--mapping NAME] [--json]
  otedi remit post FILE... [--json]
  otedi acks load FILE... [--json]
  otedi validate FILE [--json]
  otedi synth charges --rows N --seed S --out FILE [--defect-rate R] [--start DATE] [--days N]
  otedi run [--extract FILE] [--out DIR]

Output names ids, codes, counts and amounts only: never patient names,
birth dates or member ids.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from datetime import date
from pathlib import Path

from otedi import config
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
    with db.session_scope() as session:
        result = load_extract(session, args.file, args.mapping)
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


def cmd_remit_post(args) -> int:
    from otedi.remit.post import post_remittance_file
    from otedi.warehouse import db
    db.upgrade()
    summaries = []
    for path in args.files:
        with db.session_scope() as session:
            summaries.append(post_remittance_file(session, path).summary())
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    for s in summaries:
        t = s["totals"]
        print(f"{s['file']}: {s['status']}" + (f" - {s['message']}" if s["message"] else ""))
        if s["transactions"]:
            print(f"  transactions {s['transactions']}, claims matched {s['claims_matched']}, "
                  f"unmatched {s['unmatched']}")
            print(f"  paid {t['paid']}  contractual {t['contractual']}  patient responsibility "
                  f"{t['patient_responsibility']}  other {t['other_adjustments']}  denied {t['denied']}  "
                  f"PLB {t['plb']}  BPR02 {t['bpr02']}")
        for held in s["held"]:
            print(f"  {held['status'].upper()} transaction {held['transaction']} (trace {held['trace_number']}): "
                  f"{held['reason']}")
    return 0


def cmd_acks_load(args) -> int:
    from otedi.acks.load import load_ack_file
    from otedi.warehouse import db
    db.upgrade()
    summaries = []
    for path in args.files:
        with db.session_scope() as session:
            summaries.append(load_ack_file(session, path).summary())
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    for s in summaries:
        print(f"{s['file']} ({s['kind']}): {s['status']}" + (f" - {s['message']}" if s["message"] else ""))
        if s["status"] == "loaded":
            print(f"  sets {s['transaction_sets']} ({s['sets_rejected']} rejected), claims accepted "
                  f"{s['claims_accepted']}, rejected {s['claims_rejected']}, unmatched {len(s['unmatched'])}")
    return 0


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
    """The main job on embedded defaults (SQLite warehouse under OTEDI_HOME)."""
    from otedi.outbound import run_outbound
    from otedi.warehouse import db
    extract = Path(args.extract)
    out = Path(args.out) if args.out else config.home() / "outbound"
    today = date.fromisoformat(args.today) if args.today else _night_after(extract, args.mapping)
    print(f"warehouse: {_safe_url()}\nextract: {extract}\nprocessing date: {today} "
          f"(the night after the extract's last date of service; --today changes it)", file=sys.stderr)
    db.upgrade()
    result = run_outbound(extract, out, mapping=args.mapping, today=today)
    _print_outbound(result.summary())
    return 0


def _night_after(extract: Path, mapping: str | None) -> date:
    """The demo replays the sample as the nightly run after its last date of service would see it."""
    from datetime import timedelta

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

    p_cl = sub.add_parser("claims", help="claims").add_subparsers(dest="action", required=True)
    p = p_cl.add_parser("build", help="load, scrub, build and validate 837P files")
    p.add_argument("extract")
    p.add_argument("--out", required=True, help="folder for the 837P files")
    p.add_argument("--mapping")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_claims_build)

    p_re = sub.add_parser("remit", help="835 remittances").add_subparsers(dest="action", required=True)
    p = p_re.add_parser("post", help="post 835 files to the ledger")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_remit_post)

    p_ak = sub.add_parser("acks", help="999 and 277CA acknowledgments").add_subparsers(dest="action", required=True)
    p = p_ak.add_parser("load", help="load 999/277CA files and update claim status")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_acks_load)

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

    p = sub.add_parser("run", help="run the main job on embedded defaults")
    p.add_argument("--extract", default=str(config.REPO_ROOT / "sample_edi" / "charges_sample.csv"))
    p.add_argument("--mapping")
    p.add_argument("--out")
    p.add_argument("--today", help="treat this ISO date as today (for timely filing)")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    try:
        return args.func(args)
    except OtediError as exc:
        print(f"otedi: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
