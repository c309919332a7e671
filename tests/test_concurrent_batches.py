"""Two batch runs at once never put a claim in two 837P files (issue 11 item 1), on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from otedi.charges.load import load_extract
from otedi.charges.synth import synth_charges
from otedi.claims.build import build_claims
from otedi.warehouse import models
from otedi.warehouse.db import session_scope

WRITER = """
import sys
from pathlib import Path
from otedi.claims.batch import write_ready_claims
from otedi.warehouse.db import session_scope
from otedi.x12.validate import ValidationReport

def gate(path):  # the pyx12 gate is tested elsewhere; here only who takes which claim matters
    return ValidationReport(path=Path(path), ok=True, errors=[], segments=0)

with session_scope() as session:
    files = write_ready_claims(session, sys.argv[1], gate=gate)
print(len(files))
"""


def clm01s(folder: Path) -> list[str]:
    return [seg.split("*")[1] for path in folder.glob("*.837")
            for seg in path.read_text().replace("\\n", "").split("~") if seg.strip().startswith("CLM*")]


def test_two_batch_runs_at_once_write_each_claim_once(warehouse, tmp_path):
    extract = tmp_path / "charges.csv"
    synth_charges(1500, 3, extract, start=date(2026, 1, 5), days=56)
    with session_scope() as s:
        load_extract(s, extract, today=date(2026, 3, 5))
    with session_scope() as s:
        build_claims(s, today=date(2026, 3, 5))
    with session_scope() as s:
        ready = set(s.scalars(select(models.Claim.claim_id).where(models.Claim.status == "ready")))
    assert len(ready) > 100
    for round_ in range(3):
        outs = [tmp_path / f"round{round_}-{n}" for n in (1, 2)]
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for out in outs]
        results = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [err.decode()[-800:] for _, err in results]
        if round_ == 0:
            written = Counter(clm01s(outs[0]) + clm01s(outs[1]))
            assert set(written) == ready and max(written.values()) == 1  # every ready claim, each in one file
        else:
            assert clm01s(outs[0]) == clm01s(outs[1]) == []  # nothing left to take
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.Claim).where(models.Claim.status == "ready")) == 0
        in_files = s.scalar(select(func.sum(models.ClaimFile.claims)))
    assert in_files == len(ready)


def test_two_claims_builds_at_once_bill_each_charge_once(warehouse, tmp_path):
    # Two `otedi claims build` of the same extract at once (issue 11 item 1): one loads and codes, the other
    # finds the file loaded and nothing left to code; no charge is on two claims, no claim in two files.
    extract = tmp_path / "charges.csv"
    synth_charges(900, 5, extract, start=date.today() - timedelta(days=70), days=56)  # the CLI codes as of today
    outs = [tmp_path / f"out{n}" for n in (1, 2)]
    command = [sys.executable, "-m", "otedi.cli", "claims", "build", str(extract), "--json", "--out"]
    procs = [subprocess.Popen([*command, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for out in outs]
    results = [p.communicate(timeout=600) for p in procs]
    # done (0), or done with lines the 8-minute rule leaves unbilled (3: rejected): the run that coded them
    codes = {p.returncode for p in procs}
    assert codes <= {0, 3} and 3 in codes, [err.decode()[-800:] for _, err in results]
    written = Counter(clm01s(outs[0]) + clm01s(outs[1]))
    assert written and max(written.values()) == 1
    with session_scope() as s:
        per_charge = Counter(s.scalars(select(models.ClaimLine.charge_id)))
        batched = set(s.scalars(select(models.Claim.claim_id).where(models.Claim.status == "batched")))
        extracts = s.scalar(select(func.count()).select_from(models.ExtractFile))
    assert max(per_charge.values()) == 1 and set(written) == batched and extracts == 1


HOLDER = """
import sys, time
from otedi.warehouse.db import session_scope, work_lock
with session_scope() as session, work_lock(session, "deliver:7") as mine:
    session.commit()  # held across the work's commits
    print("taken" if mine else "busy", flush=True)
    time.sleep(60)
"""


def test_a_work_lock_excludes_a_twin_across_commits_and_dies_with_its_holder(warehouse):
    from otedi.warehouse.db import work_lock

    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "taken"
        with session_scope() as s:
            with work_lock(s, "deliver:7") as mine:
                assert mine is False
            with work_lock(s, "deliver:8") as other:
                assert other is True  # another piece of work is free
    finally:
        holder.kill()
        holder.wait()
    with session_scope() as s, work_lock(s, "deliver:7") as mine:
        assert mine is True  # the killed holder's lock went with it


LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_a_sqlite_twin_waits_for_the_write_lock_longer_than_one_busy_timeout(tmp_path, sqlite_template, monkeypatch):
    """A batch run on SQLite holds the write lock while its file is written and gated, which can outlast
    SQLite's busy timeout: the twin keeps waiting (bounded) instead of failing with "database is locked"."""
    import shutil
    import time

    from otedi.warehouse import db

    path = tmp_path / "otedi.db"
    shutil.copy(sqlite_template, path)
    monkeypatch.setattr(db, "SQLITE_BUSY_MS", 100)  # stands for the 30 s; the holder keeps it 1.5 s
    url = f"sqlite:///{path}"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(path), "1.5"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    started = time.monotonic()
    with db.session_scope(url) as s:
        db.begin_exclusive(s)
        waited = time.monotonic() - started
    holder.wait(timeout=10)
    db.engine(url).dispose()
    assert waited > 1.0  # it waited for the holder, through many busy timeouts
