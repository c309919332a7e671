"""Therapy used at other providers this year (KX threshold across providers): import and its effect."""

import subprocess
import sys
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from otedi.charges.therapy_usage import load_therapy_usage
from otedi.claims.build import seed_history
from otedi.warehouse import db, models

GOOD = "patient_id,year,bucket,amount,as_of,source\nP1,2026,OT,2300.00,2026-02-20,HETS 271\nP1,2026,PT_SLP,150,2026-02-20,HETS 271\n"


def write(tmp_path, text, name="usage.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_is_idempotent_and_feeds_the_kx_bucket(warehouse, tmp_path):
    path = write(tmp_path, GOOD)
    with db.session_scope() as session:
        first = load_therapy_usage(session, path)
    with db.session_scope() as session:
        again = load_therapy_usage(session, path)
        history = seed_history(session, {"P1"}, {2026})
    assert (first.loaded, first.rejected, again.loaded, again.already_known) == (2, 0, 0, 2)
    assert history.incurred("P1", "OT", date(2026, 3, 2)) == Decimal("2300.00")
    assert history.incurred("P1", "PT_SLP", date(2026, 3, 2)) == Decimal("150.00")
    assert history.incurred("P1", "OT", date(2026, 2, 19)) == Decimal("0.00")  # not reported yet then


def test_bad_rows_are_rejected_with_their_reason_and_the_rest_load(warehouse, tmp_path):
    text = (GOOD + "P2,2026,OT,-5,2026-02-20,HETS\nP3,2026,SLP,10,2026-02-20,HETS\nP4,2026,OT,10,2025-12-31,HETS\n"
            "P5,2026,OT,12.345,2026-02-20,HETS\n" + f"{'X' * 65},2026,OT,1,2026-02-20,HETS\n")
    with db.session_scope() as session:
        result = load_therapy_usage(session, write(tmp_path, text))
    assert (result.loaded, result.rejected) == (2, 5)
    assert [i.row for i in result.issues] == [4, 5, 6, 7, 8]
    assert "bucket 'SLP' is not OT or PT_SLP" in result.issues[1].message
    assert "is not in 2026" in result.issues[2].message and "longer than 64" in result.issues[4].message


def test_two_imports_at_once_store_each_report_once(warehouse, tmp_path):
    rows = "".join(f"P{n},2026,OT,{n}.00,2026-03-01,MAC PORTAL\n" for n in range(300))
    path = write(tmp_path, "patient_id,year,bucket,amount,as_of,source\n" + rows)
    command = [sys.executable, "-m", "otedi.cli", "charges", "therapy-usage", str(path), "--json"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode()[-500:] for _, err in outputs]
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(models.ExternalTherapyUsage)) == 300
