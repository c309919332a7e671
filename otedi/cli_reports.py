"""`otedi report refresh|export|html`, `otedi ar worklist` (wiring only: otedi.analytics). None creates or migrates a
warehouse; html and worklist only read; refresh, and export unless --no-refresh, rewrite the warehouse's derived
finance_* tables (otedi.analytics.warehouse_tables), never its billing data."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from otedi.cli_common import (OK, Json, Today, date_option, emit_json, out_file, out_folder, out_is_terminal,
                              records, say, show_table, tracking, UsageProblem, warehouse, working)

# otedi.analytics.export.FORMATS (tests/test_cli_app.py checks they agree; importing analytics here would load
# pandas for every command)
Format = Literal["csv", "parquet", "xlsx"]


def export(fmt: Annotated[Format, typer.Option(
               "--format", help="csv (one file per table and datapackage.json, their schemas), parquet (one file "
                                "per table) or xlsx (one workbook, a sheet per table)")] = "csv",
           out: Annotated[Optional[Path], typer.Option(
               "--out", file_okay=False, help="folder for the files (default $OTEDI_HOME/exports)")] = None,
           no_refresh: Annotated[bool, typer.Option(
               "--no-refresh", help="write the warehouse's finance_* tables as the last refresh left them (writes "
                                    "nothing to the warehouse; with --today, that must be their as-of date)")] = False,
           today: Today = None, as_json: Json = False) -> int:
    """Write the finance tables (reconciliation by claim and line, payments, unmatched and held remittances,
    AR aging, work queue, denials, KPIs) with the same columns and types every night. They are first
    refreshed in the warehouse (the finance_* tables BI tools read), so the files and the warehouse agree.

    Examples:

    ```
    otedi report export
    otedi report export --format parquet --out exports/ --today 2026-12-01
    otedi report export --format xlsx --json
    ```
    """
    from otedi.analytics import export_tables

    warehouse(writes=False)  # never created or migrated here: the refresh rewrites derived tables only
    folder = out_folder(out, "exports")
    what = "exporting the finance tables" if no_refresh else "refreshing the finance tables and exporting them"
    with tracking(f"{what} as {fmt}") as bar:
        paths = export_tables(folder, fmt, today=today, refresh=not no_refresh, progress=bar)
    if as_json:
        emit_json({"format": fmt, "folder": folder, "files": paths})
        return OK
    for path in paths:
        say(str(path))
    return OK


def refresh(today: Today = None, as_json: Json = False) -> int:
    """Refresh the warehouse's finance_* tables (reconciliation, payments, AR aging, work queue, denials, KPIs,
    with finance_refresh and finance_columns) as of --today, in one transaction, for BI tools that read the
    warehouse (Metabase, Superset, Excel over ODBC). `report export` does this too.

    Examples:

    ```
    otedi report refresh
    otedi report refresh --today 2026-12-07 --json
    ```
    """
    from otedi.analytics.warehouse_tables import refresh_finance_tables

    warehouse(writes=False)  # never created or migrated here: the refresh rewrites derived tables only
    day = today or date.today()
    with tracking("refreshing the finance tables") as bar:
        counts = refresh_finance_tables(today=day, progress=bar)
    if as_json:
        emit_json({"as_of": day, "tables": counts})
        return OK
    if out_is_terminal():
        show_table(["table", "rows"], [[name, n] for name, n in counts.items()], title=f"finance tables as of {day}",
                   right=("rows",))
    else:
        for name, n in counts.items():
            say(f"{name:<36}{n:>8}")
    say(f"{len(counts)} finance table(s) refreshed as of {day}")
    return OK


def html(out: Annotated[Optional[Path], typer.Option(
             "--out", dir_okay=False, help="the HTML file to write (default $OTEDI_HOME/report.html)")] = None,
         date_from: Annotated[Optional[date], date_option(
             "--from", help="first day of the range (default: the earliest date there is)")] = None,
         date_to: Annotated[Optional[date], date_option(
             "--to", help="last day of the range (default: the latest date there is)")] = None,
         basis: Annotated[Literal["service", "posting"], typer.Option(
             "--basis", help="service: claims whose first date of service is in the range; posting: claims with an "
                             "835 or a practice posting in the range")] = "service",
         today: Today = None, as_json: Json = False) -> int:
    """Write the finance report as one self-contained HTML page (charts as inline SVG, no network): totals,
    breakdowns by practice, payer and provider, denials and their trend, AR aging and the work queue.

    Examples:

    ```
    otedi report html
    otedi report html --out report.html --from 2026-10-01 --to 2026-10-31 --basis posting
    ```
    """
    from otedi.analytics import write_html_report

    if date_from and date_to and date_from > date_to:
        raise UsageProblem(f"--from {date_from} is after --to {date_to}: give the first day first")
    warehouse(writes=False)
    target = out_file(out, "report.html")
    with working("writing the HTML report"):
        path = write_html_report(target, today=today, date_from=date_from, date_to=date_to, basis=basis)
    if as_json:
        emit_json({"file": path, "today": today or date.today(), "from": date_from, "to": date_to, "basis": basis})
    else:
        say(str(path))
    return OK


def worklist(show_all: Annotated[bool, typer.Option("--all", help="also the items a biller marked done")] = False,
             today: Today = None, as_json: Json = False) -> int:
    """The AR work queue, most urgent first: one item per claim needing action, with the amount, the next step
    and the filing deadline. Items close themselves when an 835, a 277CA or a resubmission resolves them.

    Examples:

    ```
    otedi ar worklist
    otedi ar worklist --all --today 2026-12-01 --json
    ```
    """
    from otedi.analytics import work_queue

    warehouse(writes=False)
    with working("reading the work queue"):
        queue = work_queue(today=today)
    if not show_all:
        queue = queue[queue["state"] != "done"]
    if as_json:
        emit_json(records(queue))
        return OK
    if queue.empty:
        say("nothing to work")
        return OK
    if out_is_terminal():
        show_table(["reason", "claim", "payer", "amount", "days left", "state", "next step"],
                   [[i.reason, i.claim_id, i.payer_name, i.amount, _days_left(i),
                     "" if i.state == "open" else f"{i.state} - {i.state_by}: {i.state_note}", i.next_step]
                    for i in queue.itertuples()], title=f"work queue: {len(queue)} item(s)",
                   right=("amount", "days left"))
        return OK
    for i in queue.itertuples():
        state = "" if i.state == "open" else f"[{i.state} - {i.state_by}: {i.state_note}] "
        say(f"{i.reason:<26} {i.claim_id}  {i.payer_name[:24]:<24} ${i.amount:>9}  {state}{i.next_step}")
    say(f"{len(queue)} item(s)")
    return OK


def _days_left(item) -> str:
    value = getattr(item, "days_to_deadline", None)
    try:
        return "" if value is None or value != value else str(int(value))
    except (TypeError, ValueError):
        return str(value)


def register(groups: dict[str, typer.Typer]) -> None:
    groups["report"].command("refresh")(refresh)
    groups["report"].command("export")(export)
    groups["report"].command("html")(html)
    groups["ar"].command("worklist")(worklist)
