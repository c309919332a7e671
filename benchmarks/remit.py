"""Time 835 parsing and posting, against pyx12 validating the same file in the same run.

    python -m benchmarks.remit [--claims 20000] [--database URL] [--seed 20260715] [--keep DIR] [--profile] [--record]

Writes one large, balanced, pyx12-valid 835 (005010X221A1) to a temp folder,
streaming, then times on that one file: otedi's tokenizer (`read_segments`),
first pass (`scan_835`: structure + balancing), second pass (`iter_835`:
objects), full posting into a fresh SQLite warehouse and, with `--database`, a
fresh PostgreSQL one (`post_remittance_file`, commit included), a peer parser
(edi-835-parser, in its own environment, when there is one), and the anchor,
pyx12 4.0.0 through `validate_file`, which must report zero errors. Prints one
table; `--record` also writes it to benchmarks/results/<date>-remit.md. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Callable

from sqlalchemy import create_engine, text
from benchmarks.run import MIB, ROOT, PeakRSS, commit, machine, record, warehouse

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_CLAIMS = 20_000
SEED = 20260715
# the peer parser's own environment (as tests/test_independent_readers.py): it needs another pandas
EDI835_PYTHON = Path(os.environ.get("OTEDI_EDI835_PYTHON", ROOT / ".venv" / "edi835" / "bin" / "python"))
# Timed inside its interpreter (start-up and imports excluded): parse the file, walk every claim and line.
EDI835_SCRIPT = r"""
import json, sys, time, warnings
from importlib.metadata import version
warnings.simplefilter("ignore")
from edi_835_parser import parse
t0 = time.perf_counter()
claims = lines = 0
for ts in parse(sys.argv[1]).transaction_sets:
    for claim in ts.claims:
        claims += 1
        lines += len(claim.services)
json.dump({"seconds": time.perf_counter() - t0, "claims": claims, "lines": lines,
           "version": version("edi-835-parser")}, sys.stdout)
"""

# --- the 835 --------------------------------------------------------------------------------

PAYER_ID = "1999999999"
PAYEE_NPI = "1234567893"
PAYMENT_DATE = date(2026, 7, 15)
FIRST_SERVICE = date(2026, 5, 4)
# OT procedures: (code, fee per unit in cents, max units); the evaluation is untimed (1 unit).
TIMED = (("97530", 5200, 4), ("97110", 4600, 4), ("97535", 4900, 3), ("97112", 4800, 3), ("97140", 4200, 2),
         ("97150", 2600, 2))
EVALUATIONS = (("97165", 15500), ("97166", 16500), ("97167", 17500), ("97168", 9500))
LAST_NAMES = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
              "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN")
FIRST_NAMES = ("JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID", "ELIZABETH",
               "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH", "CHARLES", "KAREN")


def amt(cents: int) -> str:
    """X12 R amount from whole cents: 90, 90.5, 90.07, -1.23."""
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    whole, frac = divmod(cents, 100)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:02d}".rstrip("0")


@dataclass
class File835:
    path: Path
    claims: int = 0
    lines: int = 0
    segments: int = 0  # ISA through IEA
    bytes: int = 0
    charge: int = 0  # Σ CLP03, cents
    paid: int = 0  # Σ CLP04
    plb: int = 0  # Σ PLB amounts (subtracted from the payment)
    payment: int = 0  # BPR02
    plb_segments: int = 0
    plb_items: int = 0
    adjustments: dict[str, int] = field(default_factory=dict)  # "CO-45" -> cents
    # each claim as billed: (CLP01, date of service, [(procedure, modifiers, charge cents, units), ...])
    visits: list[tuple[str, date, list[tuple[str, str, int, int]]]] = field(default_factory=list)


def write_835(path: Path, claims: int, seed: int) -> File835:
    """One 835 transaction (one ACH payment) of `claims` claims with 2-3 service lines each, streamed to disk.

    Balancing (all amounts in whole cents, so exact):
    Each line: SVC02 - SVC03 = CO-45 (fee schedule) + CO-253 (2 % sequestration) + PR-2 (20 % coinsurance),
    AMT*B6 = SVC02 - CO-45; each claim: CLP03 - CLP04 = Σ line CAS, CLP05 = Σ PR; the payment: BPR02 = ΣCLP04 -
    ΣPLB. The claims go to a body file first (BPR02 comes before them), then header + body + trailer to `path`."""
    rng = random.Random(seed)
    out = File835(path)
    adjustments = {"CO-45": 0, "CO-253": 0, "PR-2": 0}
    body_path = path.with_name(path.name + ".body")
    body_segments = 0
    icns: list[str] = []  # a few payer claim numbers for the PLB references
    with body_path.open("w", encoding="ascii", newline="") as body:
        for n in range(claims):
            pcn = f"OT{n:08d}"
            icn = f"{26196000000000 + n * 7:014d}"
            if n % 5000 == 17:
                icns.append(icn)
            visit = FIRST_SERVICE + timedelta(days=n * 70 // max(claims, 1))
            dos = visit.strftime("%Y%m%d")
            received = (visit + timedelta(days=rng.randint(3, 12))).strftime("%Y%m%d")
            line_count = rng.choice((2, 2, 3))
            services = []
            if rng.random() < 0.08:
                code, fee = rng.choice(EVALUATIONS)
                services.append((code, fee, 1))
            while len(services) < line_count:
                code, fee, most = rng.choice(TIMED)
                units = rng.randint(1, most)
                services.append((code, fee * units, units))
            lines_text = []
            billed = []
            charge = paid = pr = 0
            for i, (code, line_charge, units) in enumerate(services, start=1):
                allowed = line_charge * rng.randint(58, 86) // 100
                co45 = line_charge - allowed
                pr2 = allowed * 20 // 100
                co253 = (allowed - pr2) * 2 // 100
                line_paid = allowed - pr2 - co253
                charge, paid, pr = charge + line_charge, paid + line_paid, pr + pr2
                adjustments["CO-45"] += co45
                adjustments["CO-253"] += co253
                adjustments["PR-2"] += pr2
                modifiers = ":GO:KX" if rng.random() < 0.15 else ":GO"
                billed.append((code, modifiers[1:], line_charge, units))
                lines_text.append(
                    f"SVC*HC:{code}{modifiers}*{amt(line_charge)}*{amt(line_paid)}**{units}~\n"
                    f"DTM*472*{dos}~\n"
                    f"CAS*CO*45*{amt(co45)}**253*{amt(co253)}~\n"
                    f"CAS*PR*2*{amt(pr2)}~\n"
                    f"REF*6R*{pcn}L{i}~\n"
                    f"AMT*B6*{amt(allowed)}~\n")
            body.write(f"CLP*{pcn}*1*{amt(charge)}*{amt(paid)}*{amt(pr)}*MB*{icn}*11*1~\n"
                       f"NM1*QC*1*{rng.choice(LAST_NAMES)}*{rng.choice(FIRST_NAMES)}****MI*"
                       f"{rng.randint(1, 9)}{rng.choice('ACDEFGHJKMNPQRTUVWXY')}{rng.randint(10, 99)}"
                       f"{rng.choice('ACDEFGHJKMNPQRTUVWXY')}{rng.choice('ACDEFGHJKMNPQRTUVWXY')}"
                       f"{rng.randint(1000, 9999)}~\n"
                       f"DTM*050*{received}~\n")
            body.write("".join(lines_text))
            out.visits.append((pcn, visit, billed))
            body_segments += 3 + 6 * len(services)
            out.claims += 1
            out.lines += len(services)
            out.charge += charge
            out.paid += paid
        # Provider-level adjustments, in one PLB: interest paid (L6, negative), an overpayment recovered (WO)
        # and, from 1,000 claims, a balance forwarded from an earlier payment (FB). The TR3 lets PLB repeat,
        # but pyx12 4.0.0 maps it inside a FOOTER loop of max 1 and flags a second PLB ("Loop FOOTER
        # exceeded max count"), so a second PLB would make the anchor report an error.
        plbs = []
        if claims:
            items = [("L6", f"OT{0:08d}", -rng.randint(100, 2500)), ("WO", icns[0], rng.randint(5000, 20000))]
            if claims >= 1000:
                items.append(("FB", f"FB{PAYMENT_DATE:%Y%m}", rng.randint(1000, 9000)))
            plbs.append(items)
        for items in plbs:
            pairs = "*".join(f"{reason}:{ref}*{amt(cents)}" for reason, ref, cents in items)
            body.write(f"PLB*{PAYEE_NPI}*{PAYMENT_DATE.year}1231*{pairs}~\n")
            body_segments += 1
            out.plb += sum(cents for _, _, cents in items)
            out.plb_items += len(items)
        out.plb_segments = len(plbs)

    out.payment = out.paid - out.plb
    out.adjustments = adjustments
    if out.payment <= 0:
        raise SystemExit("FAIL: generated a non-positive payment; use more claims")
    effective = PAYMENT_DATE.strftime("%Y%m%d")
    header = [
        "ISA*00*          *00*          *ZZ*OTPAYER        *ZZ*BRIGHT01       *260715*0830*^*00501*000009001*0*P*:",
        "GS*HP*OTPAYER*BRIGHT01*20260715*0830*9001*X*005010X221A1",
        "ST*835*0001",
        f"BPR*I*{amt(out.payment)}*C*ACH*CCP*01*011000015*DA*123456789*1{PAYER_ID[1:]}**01*021000021*DA*"
        f"987654321*{effective}",
        f"TRN*1*EFT{seed}*1{PAYER_ID[1:]}",
        f"DTM*405*{(PAYMENT_DATE - timedelta(days=1)).strftime('%Y%m%d')}",
        "N1*PR*OHIO STATE HEALTH PLAN",
        "N3*1 PAYER PLAZA",
        "N4*COLUMBUS*OH*43215",
        "REF*2U*OHSHP",
        "PER*BL*PROVIDER SERVICES*TE*8005550100",
        f"N1*PE*BRIGHT HANDS OCCUPATIONAL THERAPY*XX*{PAYEE_NPI}",
        "REF*TJ*341234567",
        "LX*1",
    ]
    st_segments = len(header) - 2 + body_segments + 1  # ST..SE
    with path.open("w", encoding="ascii", newline="") as fh:
        fh.write("~\n".join(header) + "~\n")
        with body_path.open("r", encoding="ascii", newline="") as body:
            shutil.copyfileobj(body, fh, 1 << 20)
        fh.write(f"SE*{st_segments}*0001~\nGE*1*9001~\nIEA*1*000009001~\n")
    body_path.unlink()
    out.segments = len(header) + body_segments + 3
    out.bytes = path.stat().st_size
    return out


def seed_claims(url: str, f835: File835) -> None:
    """The claims the 835 pays, as `otedi claims build` and `send` leave them (submitted; one charge per line,
    REF*6R = the line control number), so the posting matches every claim and line as on a real night.
    Written with otedi.warehouse.bulk in one transaction: test data, not timed as otedi."""
    from otedi.warehouse import bulk, db, models

    stamp = datetime(2026, 7, 1, tzinfo=timezone.utc)
    claims, lines, charges = {}, {}, {}

    def add(table: dict, **values) -> None:
        for key, value in values.items():
            table.setdefault(key, []).append(value)

    with db.engine(url).begin() as connection:
        [extract] = bulk.reserve_ids(connection, models.ExtractFile.__table__, 1)
        bulk.insert_rows(connection, models.ExtractFile.__table__, [dict(
            id=extract, file_name="bench.csv", sha256="0" * 64, mapping=None, rows=f835.lines,
            accepted=f835.lines, rejected=0, duplicates=0, loaded_at=stamp)])
        claim_ids = bulk.reserve_ids(connection, models.Claim.__table__, len(f835.visits))
        row = 0
        for claim_pk, (pcn, dos, billed) in zip(claim_ids, f835.visits):
            patient = f"P{claim_pk:07d}"
            add(claims, id=claim_pk, claim_id=pcn, practice_id="BRIGHTHANDS", patient_id=patient,
                payer_id=PAYER_ID, payer_sequence="P", claim_filing_code="MB", rendering_npi=PAYEE_NPI,
                service_date_from=dos, service_date_to=dos, total_charge=Decimal(sum(b[2] for b in billed)) / 100,
                frequency_code="1", diagnoses="M6281", status="submitted", created_at=stamp)
            for number, (code, modifiers, cents, units) in enumerate(billed, start=1):
                row += 1
                charge_id = f"{pcn}-{number}"
                add(charges, charge_id=charge_id, extract_file_id=extract, row_number=row, status="billed",
                    practice_id="BRIGHTHANDS", service_date=dos, patient_id=patient, patient_last_name="BENCH",
                    patient_first_name="PATIENT", patient_dob=date(1950, 1, 1), patient_sex="F",
                    patient_address1="1 MAIN ST", patient_city="COLUMBUS", patient_state="OH", patient_zip="43215",
                    payer_id=PAYER_ID, payer_name="OHIO STATE HEALTH PLAN", claim_filing_code="MB",
                    payer_sequence="P", member_id=f"M{claim_pk:09d}", relationship="18", rendering_npi=PAYEE_NPI,
                    rendering_last_name="THERAPIST", rendering_first_name="OT", rendering_role="OT",
                    referring_npi=PAYEE_NPI, referring_last_name="PHYSICIAN", referring_first_name="REF",
                    place_of_service="11", cpt=code, modifiers=modifiers, units=units,
                    charge_amount=Decimal(cents) / 100, dx_codes="M6281", loaded_at=stamp, qmb=False)
                add(lines, claim_pk=claim_pk, line_number=number, charge_id=charge_id,
                    line_control_number=f"{pcn}L{number}", service_date=dos, cpt=code, modifiers=modifiers,
                    units=units, charge_amount=Decimal(cents) / 100, dx_pointers="1")
        lines["id"] = bulk.reserve_ids(connection, models.ClaimLine.__table__, len(lines["claim_pk"]))
        bulk.insert_columns(connection, models.Charge.__table__, charges)
        bulk.insert_columns(connection, models.Claim.__table__, claims)
        bulk.insert_columns(connection, models.ClaimLine.__table__, lines)


# --- measuring ------------------------------------------------------------------------------

@dataclass
class Stage:
    name: str
    seconds: float
    peak_mib: float | None  # process RSS high-water mark during the stage (None: another process)
    start_mib: float | None
    traced_mib: float | None = None  # tracemalloc peak, measured in a separate (slower) pass
    product: bool = True  # False: test-data preparation, not part of otedi

    @property
    def growth(self) -> str:
        return "-" if self.start_mib is None else f"{self.peak_mib - self.start_mib:+,.0f}"


def timed(stages: list[Stage], peak: PeakRSS, name: str, fn: Callable[[], object], *, product: bool = True):
    gc.collect()
    peak.reset()
    start = peak.current_mib()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    stages.append(Stage(name, seconds, peak.read_mib(), start, product=product))
    print(f"  {name:<48} {seconds:9.2f} s   peak RSS {stages[-1].peak_mib:,.0f} MiB", flush=True)
    return out


def traced_peak_mib(fn: Callable[[], object]) -> float:
    """Peak of Python allocations (tracemalloc) while fn runs; slows fn down several times, so never timed."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB


def process_maxrss_mib() -> float:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MIB if sys.platform == "darwin" else maxrss * 1024 / MIB


# --- the run --------------------------------------------------------------------------------

@dataclass
class Result:
    file: File835
    stages: list[Stage]
    migrate_seconds: float
    posted: dict
    ledger_rows: int
    exceptions: int
    pyx12_segments: int
    maxrss_mib: float
    baseline_mib: float

    def stage(self, prefix: str) -> Stage:
        return next(s for s in self.stages if s.name.startswith(prefix))


READ = "otedi read_segments (tokenize + envelopes)"
SCAN = "otedi scan_835 (pass 1: structure + balancing)"
ITER = "otedi iter_835 (pass 2: objects)"
POST = "otedi post_remittance_file (SQLite, commit)"
POST_PG = "otedi post_remittance_file (PostgreSQL, commit)"


def peer_parse(path: Path, claims: int) -> tuple[str, float] | None:
    """(name, seconds) of edi-835-parser reading the file, in its own interpreter; None without one."""
    if not EDI835_PYTHON.exists():
        print(f"  peer: {EDI835_PYTHON} not found, edi-835-parser not measured", flush=True)
        return None
    done = subprocess.run([str(EDI835_PYTHON), "-c", EDI835_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"FAIL: edi-835-parser failed on the file: {done.stderr.strip()[-1500:]}")
    out = json.loads(done.stdout)
    if out["claims"] != claims:
        raise SystemExit(f"FAIL: edi-835-parser read {out['claims']} claims, the file holds {claims}")
    return f"peer: edi-835-parser {out['version']} parse (own process)", out["seconds"]


def run(claims: int, seed: int, keep: Path | None, profile: bool, database: str | None) -> Result:
    from sqlalchemy import func, select

    from otedi.remit.post import post_remittance_file
    from otedi.warehouse import db, models
    from otedi.x12.reader import read_segments
    from otedi.x12.validate import validate_file
    from otedi.x12.x835 import ClaimPayment, iter_835, scan_835

    work = Path(tempfile.mkdtemp(prefix=f"otedi-bench-remit-{claims}-"))
    path = (keep if keep else work) / f"remit-{claims}.835"
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = PeakRSS()
    stages: list[Stage] = []
    try:
        os.environ["OTEDI_HOME"] = str(work / "home")
        url = f"sqlite:///{work / 'otedi.db'}"
        os.environ["OTEDI_DATABASE_URL"] = url

        f835 = timed(stages, peak, "generate 835 (test data, not otedi)", lambda: write_835(path, claims, seed),
                     product=False)

        def read():
            n = 0
            for _ in read_segments(path):
                n += 1
            return n

        def scan():
            return scan_835(path)

        def second_pass():
            n = 0
            for item in iter_835(path):
                if isinstance(item, ClaimPayment):
                    n += 1
            return n

        segments = timed(stages, peak, READ, read)
        if segments != f835.segments:
            raise SystemExit(f"FAIL: read_segments read {segments} segments, the file holds {f835.segments}")
        scanned = timed(stages, peak, SCAN, scan)
        [summary] = scanned.transactions
        if not scanned.ok or summary.claim_count != f835.claims or summary.payment_amount * 100 != f835.payment:
            raise SystemExit(f"FAIL: scan_835 does not agree with the generator: ok={scanned.ok}, "
                             f"{summary.claim_count} claims, BPR02 {summary.payment_amount}, "
                             f"problems {[b.message for b in summary.problems[:3]]}")
        iterated = timed(stages, peak, ITER, second_pass)
        if iterated != f835.claims:
            raise SystemExit(f"FAIL: iter_835 yielded {iterated} claims, the file holds {f835.claims}")

        def post_into(target: str, name: str) -> tuple[dict, int, int, float]:
            """(summary, ledger rows, exception rows, migration seconds) of posting the file into a fresh
            warehouse at `target`."""
            t0 = time.perf_counter()
            db.upgrade(target)
            migrated = time.perf_counter() - t0
            seed_claims(target, f835)

            def post():
                with db.session_scope(target) as session:
                    return post_remittance_file(session, path)

            summary_ = timed(stages, peak, name, post).summary()
            with db.session_scope(target) as session:
                rows = session.scalar(select(func.count()).select_from(models.LedgerEntry))
                queued = session.scalar(select(func.count()).select_from(models.RemitException))
            if (summary_["status"] != "posted" or summary_["claims_matched"] != f835.claims
                    or Decimal(summary_["totals"]["bpr02"]) != summary.payment_amount
                    or Decimal(summary_["totals"]["paid"]) * 100 != f835.paid):
                raise SystemExit(f"FAIL: posting does not agree with the file: {summary_}")
            if profile:
                profile_post(path, target, work, name)
            return summary_, rows, queued, migrated

        posted, ledger_rows, exceptions, migrate_seconds = post_into(url, POST)
        if database:
            with warehouse(database, work, claims) as (pg_url, _):
                pg = post_into(pg_url, POST_PG)
            if pg[1:3] != (ledger_rows, exceptions):
                raise SystemExit(f"FAIL: PostgreSQL holds {pg[1]} ledger and {pg[2]} exception rows, SQLite "
                                 f"{ledger_rows} and {exceptions}")

        peer = peer_parse(path, f835.claims)
        if peer is not None:
            stages.append(Stage(peer[0], peer[1], None, None))
            print(f"  {peer[0]:<48} {peer[1]:9.2f} s", flush=True)

        report = timed(stages, peak, f"anchor: pyx12 {version('pyx12')} validate, same file",
                       lambda: validate_file(path))
        if not report.ok or report.errors:
            raise SystemExit(f"FAIL: pyx12 found {len(report.errors)} error(s); the anchor is not a fair one:\n"
                             + report.to_text(with_details=True)[:4000])
        if report.segments != f835.segments:
            raise SystemExit(f"FAIL: pyx12 read {report.segments} segments, the file holds {f835.segments}")
        # clear_refs resets ru_maxrss along with VmHWM, so the process peak is the highest stage peak.
        maxrss = max([process_maxrss_mib(), *(s.peak_mib for s in stages if s.peak_mib is not None)])

        # Memory pass: tracemalloc on otedi's parse stages (not timed; tracemalloc slows them down).
        print("  tracemalloc pass (untimed) ...", flush=True)
        for name, fn in ((READ, read), (SCAN, scan), (ITER, second_pass)):
            next(s for s in stages if s.name == name).traced_mib = traced_peak_mib(fn)

        db.engine(url).dispose()
        return Result(f835, stages, migrate_seconds, posted, ledger_rows, exceptions, report.segments, maxrss,
                      stages[0].start_mib or 0.0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def profile_post(path: Path, url: str, work: Path, name: str, top: int = 20) -> None:
    """cProfile of post_remittance_file on the same file, into another fresh warehouse beside `url` (a second
    SQLite file, or a second PostgreSQL database on the same server), untimed."""
    from sqlalchemy.engine import make_url

    from otedi.remit.post import post_remittance_file
    from otedi.warehouse import db

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target, admin = f"sqlite:///{work / 'profile.db'}", None
    else:
        admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}_profile"'))
        target = parsed.set(database=f"{parsed.database}_profile").render_as_string(hide_password=False)
    try:
        db.upgrade(target)
        profiler = cProfile.Profile()
        with db.session_scope(target) as session:
            profiler.enable()
            post_remittance_file(session, path)
            session.commit()
            profiler.disable()
        db.engine(target).dispose()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}_profile" WITH (FORCE)'))
            admin.dispose()
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        print(f"\ncProfile of {name}, top {top} by {key}:\n" + out.getvalue(), flush=True)


# --- reporting ------------------------------------------------------------------------------

def money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def table(result: Result, seed: int) -> str:
    f = result.file
    anchor = result.stages[-1]
    scan, second = result.stage(SCAN), result.stage(ITER)
    parse_seconds = scan.seconds + second.seconds
    header = ["stage", "seconds", "segments/s", "claims/s", "x pyx12 rate", "tracemalloc peak MiB",
              "peak RSS MiB", "RSS growth MiB"]

    def row(name, seconds, traced, peak_mib, growth, bold=False):
        cells = [name, f"{seconds:.2f}", _rate(f.segments, seconds), _rate(f.claims, seconds),
                 f"{anchor.seconds / seconds:.2f}" if seconds > 0 else "-",
                 "-" if traced is None else f"{traced:,.1f}", "-" if peak_mib is None else f"{peak_mib:,.0f}", growth]
        return [f"**{c}**" if bold and c not in ("-", "") else c for c in cells]

    body = [row(s.name, s.seconds, s.traced_mib, s.peak_mib, s.growth) for s in result.stages[:-1]]
    body.insert(4, row("otedi parse: scan + iter (the two passes posting makes)", parse_seconds,
                       max(scan.traced_mib or 0, second.traced_mib or 0) or None,
                       max(scan.peak_mib, second.peak_mib), "", bold=True))
    body.append(row(anchor.name, anchor.seconds, None, anchor.peak_mib, anchor.growth))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    ratio = anchor.seconds / parse_seconds if parse_seconds > 0 else float("nan")
    post = result.stage(POST)
    pg = next((s for s in result.stages if s.name == POST_PG), None)
    peer = next((s for s in result.stages if s.name.startswith("peer:")), None)
    postgres = (f"; PostgreSQL {f.claims / pg.seconds:,.0f} claims/s ({pg.seconds:.2f} s)" if pg else
                "; PostgreSQL not measured (no --database)")
    versus_peer = (f"; otedi parse / {peer.name[6:].split(' parse')[0]}: {peer.seconds / parse_seconds:.2f}x its rate"
                   if peer else "; no peer measured (no edi-835-parser environment)")
    adjustments = ", ".join(f"{k} {money(v)}" for k, v in f.adjustments.items())
    lines = [
        f"### {f.claims:,} claims",
        "",
        f"- file: one 835 005010X221A1 transaction (one ACH payment), {f.claims:,} claims, {f.lines:,} service lines "
        f"(2-3 per claim), {f.segments:,} segments, {f.bytes / MIB:,.1f} MiB, seed {seed}; CLP03 {money(f.charge)}, "
        f"CLP04 {money(f.paid)}, {f.plb_segments} PLB with {f.plb_items} adjustments (L6 interest, WO, FB) net {money(f.plb)}, BPR02 {money(f.payment)}; "
        f"line CAS {adjustments}",
        f"- checks: read_segments, scan_835 (balanced, same BPR02), iter_835 and pyx12 "
        f"(0 errors, {result.pyx12_segments:,} segments read) all agree with the generator",
        f"- posting: fresh SQLite warehouse (migration {result.migrate_seconds:.2f} s, not in the table), and a "
        f"fresh PostgreSQL database with --database, the same rows in each, both seeded (untimed) with the claims "
        f"and lines the 835 pays: {result.posted['claims_matched']:,} claims matched, {result.ledger_rows:,} ledger "
        f"rows ({_rate(result.ledger_rows, post.seconds)}/s), {result.exceptions:,} exception-queue rows; paid "
        f"{result.posted['totals']['paid']}, PLB {result.posted['totals']['plb']}",
        "- segments/s and claims/s divide the file's segments and claims by each row's seconds; "
        "x pyx12 rate = pyx12 seconds / the row's seconds (above 1: faster than pyx12 reads the same file); "
        "tracemalloc peak: Python allocations during the stage, measured in a separate untimed pass; "
        "peak RSS: the process's high-water mark during the stage (VmHWM, reset per stage), RSS growth its rise "
        "over the RSS the stage started with",
        f"- whole process: peak RSS {result.maxrss_mib:,.0f} MiB over the timed stages (ru_maxrss / VmHWM; "
        f"{result.baseline_mib:,.0f} MiB after imports, before the first stage)",
        "",
        fmt(header),
        "|" + "|".join(("-" * (w + 1) + ":") if i else (":" + "-" * (w + 1)) for i, w in enumerate(widths)) + "|",
        *map(fmt, body),
        "",
        f"**otedi parse / pyx12: {ratio:.2f}x** pyx12's rate (scan_835 + iter_835 {parse_seconds:.2f} s vs pyx12 "
        f"validate {anchor.seconds:.2f} s on the same file); full posting "
        f"{anchor.seconds / post.seconds:.2f}x ({post.seconds:.2f} s){versus_peer}",
        f"**posting: SQLite {f.claims / post.seconds:,.0f} claims/s ({post.seconds:.2f} s){postgres}**",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.remit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=lambda s: int(s.replace("_", "")), default=DEFAULT_CLAIMS,
                        help=f"claims in the generated 835 (default {DEFAULT_CLAIMS:,})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"generator seed (default {SEED})")
    parser.add_argument("--keep", metavar="DIR", type=Path, help="write the 835 to DIR and keep it")
    parser.add_argument("--database", metavar="URL",
                        help="PostgreSQL admin URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres): also "
                             "post into a fresh database there, dropped afterwards")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of post_remittance_file on the same file (untimed), per database")
    parser.add_argument("--record", action="store_true",
                        help="also write the table, machine and commit to benchmarks/results/<date>-remit.md")
    args = parser.parse_args(argv)
    if args.claims < 1:
        parser.error("--claims needs 1 or more")
    started = datetime.now().astimezone()
    info = machine()
    revision = commit()
    print(f"otedi 835 benchmark: {started.isoformat(timespec='seconds')}, commit {revision}, "
          f"nproc {info['nproc']}, {info['python']}\n\nrunning {args.claims:,} claims ...", flush=True)
    result = run(args.claims, args.seed, args.keep, args.profile, args.database)
    text = table(result, args.seed)
    print("\n" + text, flush=True)
    if args.record:
        path = record(text, started, first=True, revision=revision, name="-remit", command="benchmarks.remit",
                      title="otedi 835 benchmark results")
        print(f"\nrecorded in {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
