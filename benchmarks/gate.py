"""Time otedi's 837P gate against pyx12 on the same files, in the same run.

    python -m benchmarks.gate [--claims 10000] [--files DIR] [--keep DIR] [--pyx12-files N]

Writes realistic 837P files the way benchmarks/run.py does (synthetic extract, load, build,
write with the gate off; its helpers are reused), then validates every file with
`otedi.x12.gate.validate_file` and with the pyx12 gate (`otedi.x12.validate.validate_file`),
requires both to find every file valid, and prints files, segments, seconds and segments/s
of each and the ratio. `--files DIR` times the 837P files already in DIR instead.
`--pyx12-files N` times pyx12 on the first N files only (its rate is steady; the ratio uses
rates, so it stays fair) when a full pyx12 pass is too slow.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

from benchmarks.run import MAX_ROWS_PER_FILE, ROWS_PER_CLAIM, SEED, START, last_service_date, split_extract, warehouse

DAYS = 84


def write_files(claims: int, work: Path) -> list[Path]:
    """837P files of about `claims` claims, written by otedi's writer without a gate."""
    from otedi.charges.load import load_extract
    from otedi.charges.synth import synth_charges
    from otedi.claims.batch import write_ready_claims
    from otedi.claims.build import build_claims
    from otedi.warehouse import db
    from otedi.x12.validate import ValidationReport

    extract = work / "charges.csv"
    with warehouse(None, work, claims) as (url, _):
        os.environ["OTEDI_HOME"] = str(work / "home")
        os.environ["OTEDI_DATABASE_URL"] = url
        synth_charges(round(ROWS_PER_CLAIM * claims), SEED, extract, start=START, days=DAYS)
        today = last_service_date(extract) + timedelta(days=1)
        db.upgrade(url)
        for part in split_extract(extract, MAX_ROWS_PER_FILE):
            with db.session_scope(url) as session:
                load_extract(session, part, today=today)
        with db.session_scope(url) as session:
            build_claims(session, today=today)
        with db.session_scope(url) as session:
            files = write_ready_claims(session, work / "837p", today=today,
                                       gate=lambda path: ValidationReport(path=Path(path), ok=True))
    return [Path(f.path) for f in files]


def timed(gate, paths: list[Path]) -> tuple[float, int]:
    started = time.perf_counter()
    reports = [gate(path) for path in paths]
    seconds = time.perf_counter() - started
    bad = [r for r in reports if not r.ok]
    if bad:
        raise SystemExit(f"FAIL: {len(bad)} file(s) invalid:\n" + "".join(r.to_text() for r in bad[:3]))
    return seconds, sum(r.segments for r in reports)


def table(paths: list[Path], pyx12_paths: list[Path]) -> str:
    from otedi.x12.gate import maps, validate_file
    from otedi.x12.validate import validate_file as pyx12_validate

    started = time.perf_counter()
    maps.guide(maps.X222A1), maps.guide(maps.CONTROL_00501)
    compile_seconds = time.perf_counter() - started
    ours_s, ours_n = timed(validate_file, paths)
    theirs_s, theirs_n = timed(pyx12_validate, pyx12_paths)
    rows = [("otedi gate", len(paths), ours_n, ours_s), (f"pyx12 {version('pyx12')}", len(pyx12_paths), theirs_n, theirs_s)]
    lines = ["| validator | files | segments | seconds | segments/s |", "|:--|--:|--:|--:|--:|"]
    lines += [f"| {name} | {files:,} | {segments:,} | {seconds:.2f} | {segments / seconds:,.0f} |"
              for name, files, segments, seconds in rows]
    ratio = (ours_n / ours_s) / (theirs_n / theirs_s)
    lines += ["", f"**otedi gate / pyx12: {ratio:.1f}x** pyx12's rate "
                  f"(map compiled once per process: {compile_seconds:.2f} s, not in the table)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=10_000, help="claims to synthesize (default 10,000)")
    parser.add_argument("--files", type=Path, help="time the *.837 files in this folder instead")
    parser.add_argument("--keep", type=Path, help="keep the written files (and warehouse) in this folder")
    parser.add_argument("--pyx12-files", type=int, help="time pyx12 on the first N files only")
    args = parser.parse_args(argv)
    if args.files:
        paths = sorted(args.files.glob("*.837"))
        print(f"{len(paths)} file(s) in {args.files}", flush=True)
    else:
        work = args.keep or Path(tempfile.mkdtemp(prefix="otedi-gate-bench-"))
        work.mkdir(parents=True, exist_ok=True)
        print(f"writing 837P files for {args.claims:,} claims (seed {SEED}, {DAYS} days) ...", flush=True)
        paths = write_files(args.claims, work)
    try:
        print("\n" + table(paths, paths[: args.pyx12_files] if args.pyx12_files else paths), flush=True)
    finally:
        if not args.files and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
