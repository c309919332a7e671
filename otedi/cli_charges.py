"""`otedi charges load|therapy-usage`, `otedi synth charges` (wiring only: otedi.charges)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

from otedi.cli_common import (DATA, OK, Json, Today, date_option, emit_json, existing_file, home, issue_lines,
                              out_is_terminal, rejected, say, show_issues, show_pairs, tracking, warehouse, working)

Mapping = Annotated[Optional[str], typer.Option(
    "--mapping", help="column mapping of another EHR's layout, under mappings/extracts/ without .yaml "
                      "(e.g. webpt_style); default: the canonical layout")]


def load(file: Annotated[Path, existing_file("the extract: CSV, XLSX or Parquet", "EXTRACT")],
         mapping: Mapping = None, today: Today = None, as_json: Json = False) -> int:
    """Load a charge extract into the warehouse: each row validated, bad rows rejected with their row number
    and what to fix, the rest loaded; the same file (same content) is never loaded twice.

    Exit 3 when a row was rejected.

    Examples:

    ```
    otedi charges load EXTRACT.csv
    otedi charges load export.xlsx --mapping webpt_style --json
    ```
    """
    from otedi.charges.load import load_extract
    from otedi.warehouse import db, models

    warehouse(writes=True)
    day = today or date.today()
    # a concurrent twin loading the same file loses on a lock or a key and retries, finding it loaded
    with tracking(f"loading {file.name}") as bar, models.stamped_as_of(day):  # its rows dated as of --today
        result = db.in_own_transaction(lambda session: load_extract(session, file, mapping, today=day, progress=bar),
                                       what=file.name)
    issues = [i.as_dict() for i in result.issues]
    code = DATA if result.rejected or rejected(issues) else OK
    if as_json:
        emit_json({"file": result.file, "sha256": result.sha256, "already_loaded": result.already_loaded,
                   "rows": result.rows, "loaded": result.accepted, "rejected": result.rejected,
                   "duplicates": result.duplicates, "issues": issues})
        return code
    if result.already_loaded:
        say(f"{result.file}: already loaded (same content); nothing added")
        return code
    if out_is_terminal():
        show_issues(issues)
        show_pairs([("rows", result.rows), ("loaded", result.accepted), ("rejected", result.rejected),
                    ("already in the warehouse", result.duplicates)], title=result.file, width=28)
        return code
    say(f"{result.file}: {result.rows} rows, {result.accepted} loaded, {result.rejected} rejected, "
        f"{result.duplicates} already in the warehouse")
    say("\n".join(issue_lines(issues)))
    return code


def therapy_usage(file: Annotated[Path, existing_file(
        "CSV: patient_id,year,bucket (OT or PT_SLP),amount,as_of,source")], as_json: Json = False) -> int:
    """Import the therapy amounts a patient used at other providers this year (from the MAC portal or an
    eligibility response), so the KX threshold counts them. Bad rows are rejected with their row number; the
    same report is stored once, however often it is imported.

    Exit 3 when a row was rejected.

    Examples:

    ```
    otedi charges therapy-usage USAGE.csv
    otedi charges therapy-usage hets_2026-09.csv --json
    ```
    """
    from otedi.charges.therapy_usage import load_therapy_usage
    from otedi.warehouse import db

    warehouse(writes=True)
    with working(f"importing {file.name}"):
        result = db.in_own_transaction(lambda session: load_therapy_usage(session, file), what=file.name)
    issues = [i.as_dict() for i in result.issues]
    code = DATA if result.rejected else OK
    if as_json:
        emit_json({"file": result.file, "rows": result.rows, "loaded": result.loaded,
                   "already_known": result.already_known, "rejected": result.rejected, "issues": issues})
        return code
    say(f"{result.file}: {result.rows} rows, {result.loaded} loaded, {result.already_known} already known, "
        f"{result.rejected} rejected")
    show_issues(issues, title="rejected rows")
    return code


def synth(rows: Annotated[int, typer.Option("--rows", min=0, max=10_000_000, help="how many charge rows")],
          seed: Annotated[int, typer.Option("--seed", help="random seed: the same seed writes the same file")] = 1,
          out: Annotated[Optional[Path], typer.Option(
              "--out", dir_okay=False, help="the extract to write (.csv, .xlsx or .parquet); default "
                                            "$OTEDI_HOME/synth/charges_ROWS_seedSEED.csv")] = None,
          defect_rate: Annotated[float, typer.Option(
              "--defect-rate", min=0.0, max=1.0, help="share of rows given a realistic data-entry defect (0-1)")] = 0.0,
          start: Annotated[date, date_option("--start", help="first possible date of service")] = date(2026, 1, 5),
          days: Annotated[int, typer.Option("--days", min=28, max=3660,
                                            help="dates of service fall within this many days from --start")] = 300,
          as_json: Json = False) -> int:
    """Write a realistic synthetic charge extract (three practices, OT/PT/SLP episodes, plans of care,
    progress reports, assistants, dual eligibles); no real patient is in it.

    Examples:

    ```
    otedi synth charges --rows 10000 --seed 7 --out big.csv
    otedi synth charges --rows 500 --defect-rate 0.05 --start 2026-09-01 --days 60
    ```
    """
    from otedi.charges.synth import synth_charges
    from otedi.files import private_dir

    if out is None:
        out = home("synth", f"charges_{rows}_seed{seed}.csv")
        private_dir(out.parent)
    with working(f"writing {rows} synthetic charge rows"):
        written = synth_charges(rows, seed, out, defect_rate=defect_rate, start=start, days=days)
    if as_json:
        emit_json({"file": out, "rows": written, "seed": seed})
    else:
        say(f"wrote {written} charge rows to {out}")
    return OK


def register(groups: dict[str, typer.Typer]) -> None:
    groups["charges"].command("load")(load)
    groups["charges"].command("therapy-usage")(therapy_usage)
    groups["synth"].command("charges")(synth)
