"""The column-wise validator against the row-by-row one it replaced (issue 14).

tests/fixtures/validate_expected.json.gz holds what the row-by-row validator (validate_rows at commit
c12ff61, one _Row per row) returned for the inputs built here: every Issue (row, severity, rule, column,
value, charge_id, source, message, in order) and a digest of every accepted Charge. One change since, made on
purpose: a one-character value that is a digit outside ASCII ('²') is no longer zero-padded as a code (it was
shown as '0²'; ASCII digits only count as digits now). The inputs are seeded, so the same frames are built on
every run:

- a synthetic extract with defects (synth_charges, defect_rate=0.05) read from CSV;
- one row per (column, value) for every canonical column and a list of hostile and borderline values,
  plus rows for the rules that read several columns (subscriber, MSP, supervising therapist, dates,
  duplicate charge_ids) and rows whose values are out of place.

The validator now checks each column over the whole frame and explains only the rows with a problem;
these tests fail when any Issue, its order, or any accepted Charge differs from the recorded ones.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from otedi.charges.extract import RAGGED, ROW, read_extract
from otedi.charges.load import from_model, load_extract
from otedi.charges.record import CANONICAL_COLUMNS, Charge
from otedi.charges.synth import synth_charges, synthesize, write_extract
from otedi.charges.validate import validate_rows
from otedi.issues import Issue, Severity
from otedi.warehouse import models
from otedi.warehouse.db import session_scope

EXPECTED = Path(__file__).resolve().parent / "fixtures" / "validate_expected.json.gz"
TODAY = date(2026, 6, 30)
START = date(2026, 1, 5)
HOSTILE = [
    "*", "~", ":", "^", "A*B", "X~Y", "97530:GO", "M62.81^Z", "\x00", "AB\x00CD", "\x01", "\x7f", "\x1b[2J",
    "\x85", "JOSÉ", "ÄÖÜ", "中文", "😀", "\u200b", "\ufeff", "\u2028", "X" * 300, "9" * 30, "1" * 12,
    "99999999999999.99", "1e308", "-5", "0", "NaN", "None", "=1+2", "+1", "", " ", "\t", "A\nB", '"', "A,B",
    "2026-02-30", "02/03/2026", "0000-00-00", "97530 ", "GO:GO:GO:GO:GO", "٣٤", "１２", "²", "ı", "ſ", "ß",
    None,
]
BORDERLINE = [
    "1", "2", "9", "01", "18", "19", "G8", "g8", "P", "S", "T", "s", "Y", "N", "y", "n", "F", "M", "U", "f",
    "OH", "oh", "XX", "12345", "123456789", "12345-6789", "1234", "01002 4411", "MA", "MB", "MC", "CI", "16",
    "12", "13", "41", "47", "99", "11", "02", "10", "97110", "97003", "97530", "97165", "97167", "g0283",
    "GO", "go:kx", "GO KX 59 76", "GO:KX:59:76:XU", "59", "15", "0015", "1440", "1441", "999", "1000", "130",
    "130.5", "130.555", "0.00", ".50", "99999.99", "100000.00", "M62.81", "m6281|r278", "M62.81|M62.81",
    "M62.81||R27.8", " M62.81 | R27.8 ", ".M6281", "M62.81, R27.8", "M62.81;R27.8", "M62.8A1B",
    "|".join(f"M62.8{i}" for i in range(10)) + "|R27.8|R26.89|Z47.89",
    "|".join(f"M62.8{i}" for i in range(10)) + "|R27.8|R26.89|M62.80", "2026-03-02", "2026-06-30",
    "2026-07-01", "1900-01-01", "1850-01-01", "2025-12-31", "2026-3-2", "1945678906", "1945678905",
    "194567890", "19456789060", "BRIGHTHANDS", "HANDWORKS", "NOPRACTICE", "A" * 35, "A" * 36, "A" * 60,
    "A" * 61, "A" * 64, "A" * 65, "A" * 80, "A" * 81, "-", "O'BRIEN", "SMITH-JONES",
]


def hostile_frame() -> pd.DataFrame:
    """One row per (column, value), then the rules over several columns, then three rows out of place."""
    base = synthesize(400, 11, start=START, days=84).to_dict("records")
    rows: list[dict] = []

    def add(changes: dict) -> None:
        n = len(rows)
        row = {**base[n % len(base)], "charge_id": f"H{n:05d}"}
        rows.append({**row, **{c: (row[v[1:]] if isinstance(v, str) and v.startswith("=") and v[1:] in row
                                   else v) for c, v in changes.items()}})

    for column in CANONICAL_COLUMNS:
        for value in HOSTILE + BORDERLINE:
            add({column: value})
    for _ in range(40):  # the supervising therapist is the rendering one, with and without a name
        add({"supervising_npi": "=rendering_npi", "supervising_last_name": "SUPER"})
        add({"supervising_npi": "=rendering_npi", "supervising_last_name": ""})
        add({"supervising_npi": "1945678906", "supervising_last_name": ""})
    for filing in ("MB", "MA", "MC", "CI", "16"):
        for sequence in ("", "P", "S", "T"):
            for msp in ("", "12", "99"):
                add({"claim_filing_code": filing, "payer_sequence": sequence, "msp_type": msp})
        for relationship in ("18", "19", "1", "G8", ""):
            add({"claim_filing_code": filing, "relationship": relationship})
            add({"claim_filing_code": filing, "relationship": relationship, "subscriber_last_name": "",
                 "subscriber_dob": "2030-01-01", "subscriber_sex": "X"})
            add({"claim_filing_code": filing, "relationship": relationship, "subscriber_last_name": "PARENT",
                 "subscriber_first_name": "PAT", "subscriber_dob": "1980-02-02", "subscriber_sex": "m"})
            add({"claim_filing_code": filing, "relationship": relationship, "subscriber_last_name": "PARENT",
                 "subscriber_first_name": "PAT", "subscriber_dob": "1880-02-02", "subscriber_sex": "F"})
    for service in ("2026-01-10", "2026-03-30", "2026-06-30", "2026-07-01", "1960-01-01"):
        for other in ("2026-01-09", "2026-01-10", "2026-01-11", "1900-01-01", "1905-06-01", "1990-01-01"):
            for column in ("patient_dob", "initial_treatment_date", "plan_of_care_start",
                           "plan_of_care_certified_through", "progress_report_date", "plan_of_care_signed_date"):
                add({"service_date": service, column: other})
    for cpt in ("97110", "97530", "97165", "97003", "97750", "G0283", "97010"):
        for minutes in ("", "8", "0"):
            for service in ("2016-12-30", "2017-01-01", "2026-03-02"):
                add({"cpt": cpt, "minutes": minutes, "units": "", "service_date": service})
    for n in range(30):  # charge_ids repeated: the first occurrence is the row named
        add({"charge_id": f"DUP{n % 7}"})
    add({"charge_id": "DUP1", "cpt": "XXXXX"})
    frame = pd.DataFrame(rows, columns=list(CANONICAL_COLUMNS), dtype="str")
    frame[ROW] = range(2, len(frame) + 2)
    frame.attrs[RAGGED] = {10: (49, 48), 500: (47, 48), len(frame) + 1: (50, 48)}
    return frame


def synthetic_frame(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "defects.csv"
    synth_charges(3000, 20260105, path, defect_rate=0.05, start=START, days=84)
    return read_extract(path)


def digest(charge: Charge) -> str:
    return hashlib.sha256(repr(charge).encode()).hexdigest()[:20]


def outcome(frame: pd.DataFrame, file: str) -> dict:
    charges, issues = validate_rows(frame, file=file, today=TODAY)
    return {"issues": [issue_record(i) for i in issues], "charges": [digest(c) for c in charges]}


def issue_record(issue: Issue) -> list:
    return [issue.row, str(issue.severity), issue.rule, issue.column, issue.value, issue.charge_id, issue.source,
            issue.message]


@pytest.fixture(scope="module")
def expected() -> dict:
    with gzip.open(EXPECTED, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def assert_same(got: dict, want: dict) -> None:
    for n, (g, w) in enumerate(zip(got["issues"], want["issues"])):
        assert g == w, f"issue {n} differs"
    assert len(got["issues"]) == len(want["issues"])
    assert got["charges"] == want["charges"]


def test_synthetic_extract_with_defects_gives_the_recorded_issues_and_charges(expected, tmp_path):
    got = outcome(synthetic_frame(tmp_path), "defects.csv")
    assert len(got["charges"]) > 2500 and any(i[1] == "reject" for i in got["issues"])
    assert_same(got, expected["synthetic"])


def test_hostile_and_borderline_values_give_the_recorded_issues_and_charges(expected):
    got = outcome(hostile_frame(), "hostile.csv")
    assert got["charges"] and got["issues"]
    assert_same(got, expected["hostile"])


def test_the_load_stores_exactly_the_validated_charges_and_issues(warehouse, tmp_path):
    """load_extract writes in bulk (otedi.warehouse.bulk): what it stores reads back as validate_rows' Charges,
    row numbers, rejects and warnings; a second file repeating charge_ids stores only the new ones."""
    path = tmp_path / "defects.csv"
    synth_charges(3000, 20260105, path, defect_rate=0.05, start=START, days=84)
    frame = read_extract(path)
    charges, issues = validate_rows(frame, file=path.name, today=TODAY)
    with session_scope() as s:
        result = load_extract(s, path, today=TODAY)
    assert (result.accepted, result.duplicates, result.issues) == (len(charges), 0, issues)
    rows = dict(zip(frame["charge_id"], frame[ROW]))  # the synthetic charge_ids are unique
    with session_scope() as s:
        stored = s.scalars(select(models.Charge).order_by(models.Charge.id)).all()
        assert [from_model(c) for c in stored] == charges
        assert [c.row_number for c in stored] == [rows[c.charge_id] for c in charges]
        assert {(c.status, c.extract_file_id) for c in stored} == {("new", stored[0].extract_file_id)}
        rejects = s.execute(select(models.ChargeReject.row_number, models.ChargeReject.charge_id,
                                   models.ChargeReject.column_name, models.ChargeReject.value,
                                   models.ChargeReject.rule, models.ChargeReject.message)
                            .order_by(models.ChargeReject.id)).all()
        assert [tuple(r) for r in rejects] == [(i.row, i.charge_id, i.column, i.value, i.rule, i.message)
                                               for i in issues if i.severity is Severity.REJECT]
        warnings = s.execute(select(models.EditIssue.charge_id, models.EditIssue.severity, models.EditIssue.rule,
                                    models.EditIssue.source, models.EditIssue.message)
                             .order_by(models.EditIssue.id)).all()
        assert [tuple(w) for w in warnings] == [(i.charge_id, str(i.severity), i.rule, i.source, i.message)
                                                for i in issues if i.severity is not Severity.REJECT]
        assert warnings and rejects

    again = tmp_path / "again.csv"  # 10 charge_ids the warehouse has, 5 new ones
    frame = synthesize(15, 99, start=START, days=84)
    frame["charge_id"] = [c.charge_id for c in charges[:10]] + [f"NEW{n}" for n in range(5)]
    write_extract(frame, again)
    with session_scope() as s:
        second = load_extract(s, again, today=TODAY)
    assert (second.accepted, second.duplicates, second.rejected) == (5, 10, 0)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.Charge)) == len(charges) + 5
        assert s.scalar(select(models.ExtractFile.duplicates).where(models.ExtractFile.sha256 == second.sha256)) == 10
