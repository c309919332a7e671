"""`otedi run` (the main job on embedded defaults) and `otedi db upgrade` (wiring only: otedi.cycle,
otedi.warehouse.db)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from otedi.cli_common import (OK, Json, Steps, combine, date_option, emit_json, exit_code, home, note,
                              out_is_terminal, say, show_issues, show_pairs, warehouse, working)


def upgrade(as_json: Json = False) -> int:
    """Create the warehouse or migrate its schema to this otedi's revision (idempotent). Where
    OTEDI_AUTO_UPGRADE is off (any database OTEDI_DATABASE_URL names, unless it says otherwise) this is the
    only command that migrates.

    Examples:

    ```
    otedi db upgrade
    OTEDI_DATABASE_URL=postgresql+psycopg://user@host:5432/otedi otedi db upgrade --json
    ```
    """
    from otedi.warehouse import db

    shown = db.describe()
    note(f"warehouse: {shown}")
    with working("migrating the warehouse schema"):
        db.upgrade()
    head = db.head_revision()
    if as_json:
        emit_json({"warehouse": shown, "revision": head})
    else:
        say(f"warehouse at {shown} is up to date (schema revision {head})")
    return OK


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


def run(extract: Annotated[Optional[Path], typer.Option(
            "--extract", exists=True, dir_okay=False, readable=True,
            help="the charge extract to bill (default: the sample extract otedi ships)")] = None,
        mapping: Annotated[Optional[str], typer.Option(
            "--mapping", help="column mapping of the extract, under mappings/extracts/ without .yaml")] = None,
        drop: Annotated[Optional[str], typer.Option(
            "--drop", help="the drop URL (default file://$OTEDI_HOME/drop)")] = None,
        seed: Annotated[int, typer.Option("--seed", help="the simulator's random seed")] = 7,
        no_simulator: Annotated[bool, typer.Option(
            "--no-simulator", help="a real clearinghouse answers instead of the built-in simulator")] = False,
        issues: Annotated[int, typer.Option("--issues", min=0, help="how many issues to list (0: none)")] = 20,
        today: Annotated[Optional[date], date_option(
            "--today", help="treat this date as today (default: the night after the extract's last date of "
                            "service)")] = None,
        follow_up_days: Annotated[int, typer.Option(
            "--follow-up-days", min=0, max=3660, metavar="N",
            help="then run the next cycle N days later too, without a new extract (what the payers answer "
                 "later: delayed payments, crossovers, secondary claims); make demo uses 35")] = 0,
        as_json: Json = False) -> int:
    """The main job on embedded defaults: one full billing cycle (load, code, scrub, 837P through the pyx12
    gate, send, the simulator answers, fetch, acknowledgments, 835 posting, secondary claims), then the
    issues list, the totals and the HTML report. Run it again and nothing is sent, loaded or posted twice.
    --today defaults to the night after the extract's last date of service.

    Exit 3 when a row or line was rejected, a file quarantined or a transaction held.

    Examples:

    ```
    otedi run
    otedi run --follow-up-days 35
    otedi run --extract charges.csv --today 2026-11-14 --json
    ```
    """
    from otedi import config
    from otedi.analytics import write_html_report
    from otedi.cli_claims import outbound_problem
    from otedi.cli_drop import ingest_code
    from otedi.cycle import run_cycle
    from otedi.simulator import simulate_once

    extract = extract or config.sample_extract()
    drop_url = drop or config.drop_url()
    shown = warehouse(writes=True)
    first = today or _night_after(extract, mapping)
    note(f"extract:   {extract}\ndrop:      {drop_url}\ndate:      {first}"
         + ("" if today else " (the night after the extract's last date of service; --today changes it)"))
    nights = [first] + ([first + timedelta(days=follow_up_days)] if follow_up_days else [])
    per_night = 5 if no_simulator else 6
    results = []
    with Steps(per_night * len(nights) + 1, "billing cycle") as steps:
        for night in nights:
            if results:
                note(f"... {follow_up_days} days later, {night}: the payers' later answers (delayed payments, "
                     f"Medicaid's crossover 835s, adjudications after predeterminations, the secondary claims)")
            # The simulated Medicare learns who is dual eligible from the extract (otedi.simulator.eligibility).
            answer = None if no_simulator else (lambda night=night: simulate_once(
                drop_url, seed=seed, today=night, eligibility_from=[(extract, mapping)]))
            results.append(run_cycle(None if results else extract, drop_url=drop_url, out_dir=home("outbound"),
                                     archive_dir=home("archive"), today=night, mapping=mapping, answer=answer,
                                     progress=steps))
        steps("writing the HTML report")
        report = write_html_report(home("report.html"), today=nights[-1])
    code = combine(*(exit_code(data=outbound_problem(r.outbound.summary())) for r in results),
                   *(ingest_code(r.ingest) for r in results))
    summary = results[0].outbound.summary()
    t = results[-1].summary
    if as_json:
        emit_json({"warehouse": shown, "extract": extract, "drop": drop_url, "report": report,
                   "nights": [{"today": night, "outbound": r.outbound.summary(), "sent": r.sent,
                               "fetched": r.fetched, "secondary_built": r.secondary_built,
                               "ingest": {"acks": r.ingest.acks, "remittances": r.ingest.remittances,
                                          "skipped": r.ingest.skipped, "failed": r.ingest.failed,
                                          "qmb_written_off": [vars(w) for w in r.ingest.qmb_written_off]}}
                              for night, r in zip(nights, results)],
                   "totals": t})
        return code
    if issues:
        show_issues(summary["issues"], limit=issues)
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
        ("billed (claims in AR)", f"{t['billed']:,.2f}"),
        ("paid", f"{t['paid']:,.2f}"),
        ("contractual", f"{t['contractual']:,.2f}"),
        ("patient responsibility", f"{t['patient_responsibility']:,.2f}"),
        ("other adjustments", f"{t['other_adjustments']:,.2f}"),
        ("denied", f"{t['denied']:,.2f}"),
        ("written off (insurance side)", f"{t['written_off']:,.2f}"),
        ("still open", f"{t['still_open']:,.2f}"),
        ("insurance AR / patient AR", f"{t['insurance_ar']:,.2f} / {t['patient_ar']:,.2f}"),
        ("claims not sent (not AR) / billed", f"{sum(t['claims_not_sent'].values())} / {t['not_sent_billed']:,.2f}"),
        ("claims crossed over by the payer", t["claims_crossed_over"]),
        ("paid by the crossover payers", f"{t['crossover_paid']:,.2f}"),
        ("QMB cost sharing written off", sum(len(r.ingest.qmb_written_off) for r in results)),
    ]
    if issues and summary["issues"] and not out_is_terminal():
        say()
    show_pairs(rows, title=f"billing cycle {nights[0]}" + (f" and {nights[-1]}" if len(nights) > 1 else ""))
    say("\nclaims by status: " + ", ".join(f"{k} {v}" for k, v in t["claims_by_status"].items()))
    say(f"files: {home('outbound')} (837P), {home('archive')} (999, 277CA, 835)")
    say(f"report: {report}  (finance tables: otedi report export; work queue: otedi ar worklist)")
    return code


def register(groups: dict[str, typer.Typer], app: typer.Typer) -> None:
    groups["db"].command("upgrade")(upgrade)
    app.command("run")(run)
