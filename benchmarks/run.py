"""Time the outbound flow stage by stage, against pyx12 validating the same files.

    python -m benchmarks.run [--claims 10000,100000] [--database URL] [--out DIR] [--record]

For each target claim count N: synthesize an extract of about 2.8 x N charge
rows, load it into a fresh warehouse, build claims, write the 837P files
(gate switched off, so our writer is timed alone), then run the pyx12 gate
(`otedi.x12.validate.validate_file`) on every written file as the anchor and
require zero errors. Prints one table per N; `--record` also writes the
tables to benchmarks/results/<date>.md. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import csv
import gc
import inspect
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

ROWS_PER_CLAIM = 2.8  # a synthetic visit (one claim) makes about 2.8 charge rows
START = date(2026, 1, 5)  # a Monday
# 12 weeks of service dates: an episode of care (4-10 weeks) fits, and with `today` the day after the
# last date of service even the first visit is inside the shortest filing limit (commercial, 90 days),
# so no claim is held for timely filing. Longer spans hold a growing share of commercial claims.
DAYS = 84
SEED = 20260105
DEFAULT_CLAIMS = "10000,100000"
SYNTH = "synthesize extract (CSV, in a child process)"
ROW_STAGES = (SYNTH, "load: read + validate + insert")  # their unit is the charge row
MIB = 1024 * 1024


# --- measuring --------------------------------------------------------------------------------

class PeakRSS:
    """Peak resident set size of this process during a stage.

    On Linux, writing 5 to /proc/self/clear_refs resets the high-water mark
    (VmHWM), so each stage gets its own peak at no cost. Elsewhere we fall
    back to ru_maxrss, which is the peak of the whole run so far."""

    def __init__(self) -> None:
        self.per_stage = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.per_stage:
            self._reset()

    @staticmethod
    def _status_mib(key: str) -> float | None:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1]) * 1024 / MIB
        except OSError:
            pass
        return None

    def current_mib(self) -> float | None:
        return self._status_mib("VmRSS:")

    def read_mib(self) -> float:
        if self.per_stage:
            hwm = self._status_mib("VmHWM:")
            if hwm is not None:
                return hwm
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss / MIB if sys.platform == "darwin" else maxrss * 1024 / MIB  # bytes on macOS, KiB on Linux


@dataclass
class Stage:
    name: str
    seconds: float
    peak_mib: float
    start_mib: float | None  # RSS when the stage began (None where /proc is unavailable)

    @property
    def growth(self) -> str:
        return "-" if self.start_mib is None else f"{self.peak_mib - self.start_mib:+,.0f}"


@dataclass
class Run:
    target: int
    rows: int
    days: int
    today: date
    database: str
    stages: list[Stage] = field(default_factory=list)
    migrate_seconds: float = 0.0
    accepted: int = 0
    rejected: int = 0
    built_claims: int = 0
    held: int = 0
    held_rules: Counter = field(default_factory=Counter)
    not_billed: int = 0
    files: int = 0
    claims: int = 0
    lines: int = 0
    segments: int = 0
    bytes: int = 0
    pyx12_segments: int = 0
    pyx12_errors: int = 0

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def synthesize_in_child(rows: int, seed: int, extract: Path, days: int) -> None:
    """Write the synthetic extract from a child process: the generator's row dicts would otherwise stay in
    this process's heap (CPython keeps freed arenas) and count as the night's memory."""
    code = ("import sys, datetime; from otedi.charges.synth import synth_charges; "
            "synth_charges(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], "
            "start=datetime.date.fromisoformat(sys.argv[4]), days=int(sys.argv[5]))")
    subprocess.run([sys.executable, "-c", code, str(rows), str(seed), str(extract), START.isoformat(), str(days)],
                   check=True, cwd=ROOT)


def children_peak_mib() -> float:
    """The largest peak RSS of the child processes waited for so far."""
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return maxrss / MIB if sys.platform == "darwin" else maxrss * 1024 / MIB


CURRENT: dict = {}  # the run and stage in progress, for a partial report when interrupted


def timed(run: Run, peak: PeakRSS, name: str, fn: Callable[[], object]) -> object:
    gc.collect()
    peak.reset()
    start = peak.current_mib()
    t0 = time.perf_counter()
    CURRENT.update(run=run, stage=name, since=t0)
    out = fn()
    seconds = time.perf_counter() - t0
    CURRENT.pop("stage", None)
    run.stages.append(Stage(name, seconds, peak.read_mib(), start))
    print(f"  {name:<42} {seconds:9.2f} s   peak RSS {run.stages[-1].peak_mib:,.0f} MiB", flush=True)
    return out


# --- the warehouse ----------------------------------------------------------------------------

@contextmanager
def warehouse(database: str | None, work: Path, target: int) -> Iterator[tuple[str, str]]:
    """(url, description) of a fresh, empty warehouse; dropped afterwards when it is a PostgreSQL database."""
    from otedi.warehouse import db

    if database is None:
        url = f"sqlite:///{work / 'otedi.db'}"
        yield url, "SQLite file (fresh, temp folder)"
        db.engine(url).dispose()
        return

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(database)
    if admin_url.get_backend_name() != "postgresql":
        raise SystemExit(f"--database takes a PostgreSQL admin URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/"
                         f"postgres); got a {admin_url.get_backend_name()} URL. SQLite is the default.")
    name = f"otedi_bench_{os.getpid()}_{target}"
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        server = conn.execute(text("SHOW server_version")).scalar()
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url, f"PostgreSQL {server} (fresh database {name} on {admin_url.host}:{admin_url.port or 5432})"
    finally:
        db.engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- one run ----------------------------------------------------------------------------------

def last_service_date(path: Path) -> date:
    """The extract is sorted by service date; its last row has the latest one."""
    with open(path, newline="", encoding="utf-8") as fh:
        return max(date.fromisoformat(row["service_date"]) for row in csv.DictReader(fh))


def run_one(target: int, *, database: str | None, out: Path | None, days: int, seed: int) -> Run:
    from otedi.charges.load import load_extract
    from otedi.claims import batch
    from otedi.claims.build import build_claims
    from otedi.issues import Severity
    from otedi.warehouse import db
    from otedi.clearinghouse import send_ready_files
    from otedi.transport import open_drop
    from otedi.x12 import gate
    from otedi.x12.validate import ValidationReport, validate_file

    keep = out is not None
    work = (out / f"claims-{target}") if keep else Path(tempfile.mkdtemp(prefix=f"otedi-bench-{target}-"))
    if keep and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    extract = work / "charges.csv"
    out_dir = work / "837p"
    rows = round(ROWS_PER_CLAIM * target)
    peak = PeakRSS()
    try:
        with warehouse(database, work, target) as (url, described):
            os.environ["OTEDI_HOME"] = str(work / "home")
            os.environ["OTEDI_DATABASE_URL"] = url
            run = Run(target=target, rows=rows, days=days, today=START, database=described)

            timed(run, peak, SYNTH, lambda: synthesize_in_child(rows, seed, extract, days))
            # the stage ran in a child: its peak is the child's (this process stays small for the night)
            run.stages[-1] = Stage(SYNTH, run.stages[-1].seconds, children_peak_mib(), None)
            # Process the day after the last date of service: every row is in the past, none is stale.
            run.today = last_service_date(extract) + timedelta(days=1)

            t0 = time.perf_counter()
            db.upgrade(url)
            run.migrate_seconds = time.perf_counter() - t0

            def load():
                with db.session_scope(url) as session:  # one file, one unit of work, as the nightly job loads it
                    return load_extract(session, extract, today=run.today)

            loaded = timed(run, peak, "load: read + validate + insert", load)
            run.accepted, run.rejected = loaded.accepted, loaded.rejected

            def build():
                with db.session_scope(url) as session:
                    return build_claims(session, today=run.today)

            built = timed(run, peak, "build: scrub + group + store", build)
            run.built_claims, run.held, run.not_billed = built.claims, built.held, built.not_billed
            run.held_rules = Counter(i.rule for i in built.issues if i.severity is Severity.HOLD)

            def no_gate(path: Path) -> ValidationReport:
                return ValidationReport(path=Path(path), ok=True)

            def write():
                with db.session_scope(url) as session:
                    if "gate" in inspect.signature(batch.write_ready_claims).parameters:
                        return batch.write_ready_claims(session, out_dir, gate=no_gate)
                    # Older otedi without the `gate` parameter: swap the module's validator.
                    saved, batch.validate_file = batch.validate_file, no_gate
                    try:
                        return batch.write_ready_claims(session, out_dir)
                    finally:
                        batch.validate_file = saved

            files = timed(run, peak, "write 837P (gate off)", write)
            bad = [f.path for f in files if f.status != "ready"]
            if bad:
                raise SystemExit(f"FAIL: {len(bad)} file(s) not ready after the write stage: {bad}")
            run.files = len(files)
            run.claims = sum(f.claims for f in files)
            run.lines = sum(f.lines for f in files)
            for f in files:
                data = Path(f.path).read_bytes()
                run.bytes += len(data)
                run.segments += data.count(b"~")  # the segment terminator; values never contain it

            def our_gate():
                return [gate.validate_file(f.path) for f in files]

            checked = timed(run, peak, GATE, our_gate)
            if any(not r.ok for r in checked):
                raise SystemExit(f"FAIL: otedi's gate found errors in {sum(not r.ok for r in checked)} file(s)")

            def send():
                with open_drop(f"file://{work / 'drop'}") as drop, db.session_scope(url) as session:
                    return send_ready_files(session, drop, today=run.today)

            sent = timed(run, peak, "send to the file:// drop", send)
            if len(sent) != len(files):
                raise SystemExit(f"FAIL: {len(sent)} of {len(files)} file(s) sent")

            def anchor():
                return [validate_file(f.path) for f in files]

            reports = timed(run, peak, f"pyx12 {version('pyx12')} validate, same files", anchor)
            run.pyx12_segments = sum(r.segments for r in reports)
            run.pyx12_errors = sum(len(r.errors) for r in reports)
            failed = [r for r in reports if not r.ok or r.errors]
            if failed:
                text = "".join(r.to_text() for r in failed[:3])
                raise SystemExit(f"FAIL: pyx12 found errors in {len(failed)} of {len(reports)} file(s):\n{text}")
            if run.pyx12_segments != run.segments:
                raise SystemExit(f"FAIL: pyx12 read {run.pyx12_segments} segments, the files hold {run.segments}")
            return run
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


# --- reporting --------------------------------------------------------------------------------

GATE = "gate: otedi's X222A1 validation, same files"
OURS = ("load: read + validate + insert", "build: scrub + group + store", "write 837P (gate off)", GATE,
        "send to the file:// drop")
NIGHT_TARGET = {10_000: 10.0, 100_000: 90.0}  # issue 14: seconds for the whole night on 2 cores
MEMORY_TARGET_MIB = 1024  # issue 14: the night's peak RSS
MEMORY_SCALE = 1.5  # issue 14: peak RSS at 100k claims at most 1.5x that at 10k


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def table(run: Run, smaller: Run | None = None) -> str:
    """The run's table and target lines (`smaller`: a run of fewer claims in this process, for memory scaling)."""
    anchor = run.stages[-1]
    ours = sum(run.stage(n).seconds for n in OURS)
    ours_peak = max(run.stage(n).peak_mib for n in OURS)
    header = ["stage", "seconds", "rows/s", "claims/s", "segments/s", "peak RSS MiB", "RSS growth MiB"]
    body = [[s.name, f"{s.seconds:.2f}", _rate(run.rows, s.seconds) if s.name in ROW_STAGES else "",
             _rate(run.claims, s.seconds), _rate(run.segments, s.seconds), f"{s.peak_mib:,.0f}", s.growth]
            for s in run.stages[:-1]]
    body.append(["**the night: load + build + write + gate + send**", f"**{ours:.2f}**", "",
                 f"**{_rate(run.claims, ours)}**",
                 f"**{_rate(run.segments, ours)}**", f"{ours_peak:,.0f}", ""])
    body.append([f"anchor: {anchor.name}", f"{anchor.seconds:.2f}", "", _rate(run.claims, anchor.seconds),
                 _rate(run.segments, anchor.seconds), f"{anchor.peak_mib:,.0f}", anchor.growth])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    ratio = anchor.seconds / ours if ours > 0 else float("nan")
    gate_seconds = run.stage(GATE).seconds or float("nan")
    held = ", ".join(f"{rule} {n}" for rule, n in run.held_rules.most_common()) or "none"
    lines = [
        f"### {run.target:,} claims (target)",
        "",
        f"- extract: {run.rows:,} charge rows ({ROWS_PER_CLAIM} per claim), {run.days} days of service from {START}, "
        f"processed as of {run.today}; one file; {run.accepted:,} loaded, {run.rejected:,} rejected",
        f"- warehouse: {run.database}; schema migration {run.migrate_seconds:.2f} s (not in the table)",
        f"- built {run.built_claims:,} claims: {run.held:,} held (hold issues: {held}), "
        f"{run.not_billed:,} charges not billed",
        f"- written: {run.files} file(s), {run.claims:,} claims, {run.lines:,} service lines, "
        f"{run.segments:,} segments, {run.bytes / MIB:,.1f} MiB; pyx12: {run.pyx12_errors} errors, "
        f"{run.pyx12_segments:,} segments read",
        "- rows/s: the extract's charge rows per second (synthesize, load); "
        "claims/s and segments/s of every row use the claims and segments written, so rows compare directly; "
        "peak RSS is the whole process's high-water mark during the stage, RSS growth its rise over the RSS "
        "the stage started with",
        "",
        fmt(header),
        "|" + "|".join(("-" * (w + 1) + ":") if i else (":" + "-" * (w + 1)) for i, w in enumerate(widths)) + "|",
        *map(fmt, body),
        "",
        f"**the night / pyx12: {ratio:.2f}x** pyx12's rate (the whole night {ours:.2f} s vs pyx12 validating "
        f"the same files {anchor.seconds:.2f} s; above 1 means we bill faster than pyx12 checks)",
        "",
        f"**gate / pyx12: {anchor.seconds / gate_seconds:.1f}x** pyx12's rate (otedi's gate {gate_seconds:.2f} s, "
        "the same verdict: tests/test_gate_differential.py; target 20x)",
    ]
    target = NIGHT_TARGET.get(run.target)
    if target is not None:
        met = "met" if ours <= target else "NOT met"
        lines.append(f"\nnight target (issue 14): {target:.0f} s on 2 cores: {met} ({ours:.2f} s)")
    met = "met" if ours_peak <= MEMORY_TARGET_MIB else "NOT met"
    lines.append(f"\nmemory target (issue 14): the night's peak RSS <= {MEMORY_TARGET_MIB:,} MiB: {met} "
                 f"({ours_peak:,.0f} MiB)")
    if smaller is not None:
        base = max(smaller.stage(n).peak_mib for n in OURS)
        met = "met" if ours_peak <= MEMORY_SCALE * base else "NOT met"
        lines.append(f"\nmemory scaling (issue 14): peak RSS at {run.target:,} <= {MEMORY_SCALE}x that at "
                     f"{smaller.target:,} claims: {met} ({ours_peak:,.0f} vs {base:,.0f} MiB, "
                     f"{ours_peak / base:.2f}x)")
    if run.held_rules.get("timely-filing"):
        lines.append(f"\nWARNING: {run.held_rules['timely-filing']} timely-filing holds; shorten --days.")
    return "\n".join(lines)


def partial_table(run: Run, stage: str | None, since: float | None, failure: str | None = None) -> str:
    """What an interrupted or failed run measured: the finished stages, and how long the unfinished one ran."""
    lines = [
        f"### {run.target:,} claims (target): {'FAILED' if failure else 'INTERRUPTED'}, incomplete",
        "",
        f"- extract: {run.rows:,} charge rows ({ROWS_PER_CLAIM} per claim), {run.days} days of service from "
        f"{START}, one file; warehouse: {run.database}",
        "",
        "| stage | seconds | peak RSS MiB | RSS growth MiB |",
        "|:--|--:|--:|--:|",
        *(f"| {s.name} | {s.seconds:.2f} | {s.peak_mib:,.0f} | {s.growth} |" for s in run.stages),
    ]
    if stage and since is not None:
        how = "failed" if failure else "stopped, unfinished"
        lines.append(f"| {stage} | {'' if failure else '> '}{time.perf_counter() - since:.2f} ({how}) | | |")
    if failure:
        lines += ["", f"Failure: {failure}"]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    return {
        "nproc": str(nproc),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "packages": ", ".join(f"{p} {version(p)}" for p in ("SQLAlchemy", "pandas", "pyx12")),
    }


def commit() -> str:
    """HEAD's short hash (read-only git; --no-optional-locks so git never writes the index)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("diff", "--name-only", "HEAD", "--", "otedi")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if dirty:
        return f"{head} + uncommitted changes in {', '.join(dirty.splitlines())}"
    return head


def record(text: str, started: datetime, *, first: bool, revision: str, name: str = "",
           command: str = "benchmarks.run", title: str = "otedi benchmark results") -> Path:
    """Append a table to benchmarks/results/<date><name>.md; the first table of a run opens its section
    (command, commit, machine)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{started.date().isoformat()}{name}.md"
    info = machine()
    section = text + "\n" if not first else "\n".join([
        f"## Run of {started.isoformat(timespec='seconds')}",
        "",
        f"- command: `python -m {command} {' '.join(sys.argv[1:])}`".rstrip(),
        f"- commit: {revision} (at the start of the run)",
        f"- machine: nproc {info['nproc']}, {info['cpu']}; {info['python']}; {info['os']}",
        f"- packages: {info['packages']}",
        "",
        text,
        "",
    ])
    if path.exists():
        section = path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + section
    else:
        section = f"# {title}, {started.date().isoformat()}\n\n" + section
    path.write_text(section, encoding="utf-8")
    return path


# --- command line -----------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", default=DEFAULT_CLAIMS,
                        help=f"comma-separated target claim counts (default {DEFAULT_CLAIMS})")
    parser.add_argument("--database", metavar="URL",
                        help="PostgreSQL admin URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres): "
                             "each run creates and drops a fresh database there. Default: a fresh SQLite file")
    parser.add_argument("--out", metavar="DIR", type=Path,
                        help="keep each run's extract, warehouse and 837P files under DIR/claims-N "
                             "(default: a temp folder, removed afterwards)")
    parser.add_argument("--record", action="store_true",
                        help="also write the tables, machine and commit to benchmarks/results/<date>.md")
    parser.add_argument("--days", type=int, default=DAYS, help=f"days of service in the extract (default {DAYS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"synthesis seed (default {SEED})")
    args = parser.parse_args(argv)
    try:
        args.targets = [int(x.replace("_", "")) for x in args.claims.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--claims takes comma-separated whole numbers, got {args.claims!r}")
    if not args.targets or min(args.targets) < 1:
        parser.error("--claims needs at least one count of 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now().astimezone()
    info = machine()
    revision = commit()
    print(f"otedi benchmark: {started.isoformat(timespec='seconds')}, commit {revision}, "
          f"nproc {info['nproc']}, {info['python']}", flush=True)
    # SIGTERM (kill PID) stops a run like Ctrl-C: the finished stages are still printed and recorded.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tables = []
    smaller = None  # the previous size's run, for the memory scaling line
    for target in args.targets:
        print(f"\nrunning {target:,} claims ...", flush=True)
        CURRENT.clear()
        try:
            run = run_one(target, database=args.database, out=args.out, days=args.days, seed=args.seed)
        except (KeyboardInterrupt, Exception, SystemExit) as exc:
            if "run" not in CURRENT:
                raise
            failure = None
            if not isinstance(exc, KeyboardInterrupt):
                first = (str(exc).splitlines() or [""])[0]
                failure = f"{type(exc).__name__}: {first[:300]}"
            tables.append(partial_table(CURRENT["run"], CURRENT.get("stage"), CURRENT.get("since"), failure))
            print("\n" + tables[-1], flush=True)
            if args.record:
                path = record(tables[-1], started, first=len(tables) == 1, revision=revision)
                print(f"\nrecorded in {path.relative_to(ROOT)}", flush=True)
            return 130 if failure is None else 1
        tables.append(table(run, smaller if smaller is not None and smaller.target < run.target else None))
        smaller = run
        print("\n" + tables[-1], flush=True)
        if args.record:  # after each N, so a long run keeps what it finished
            path = record(tables[-1], started, first=len(tables) == 1, revision=revision)
            print(f"\nrecorded in {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
