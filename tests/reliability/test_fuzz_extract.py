"""Fuzzing the charge-extract reader and loader on SQLite and PostgreSQL (issue 11).

A valid synthetic extract is mutated: hostile cells (X12 delimiters, NUL and other control characters,
non-ASCII, over-long values, formulas, blanks, numbers too big for a column), rows with values missing or
added, a blank line, a byte-order mark, CR or CRLF line ends, another encoding, a duplicate or missing
header column. Whatever arrives, the load either refuses the whole file with one ExtractError (nothing
written) or takes every row: loaded, or rejected with its row number, column and reason, while the rows
nobody touched load. Never another exception, never a database error, and no rejection repeats a value of
a PHI column - nor any value of a row whose values are out of place.

Every input that once failed is kept under crashers/extract/ and replayed on both databases.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from otedi.charges.load import load_extract
from otedi.charges.record import CANONICAL_COLUMNS, REQUIRED_COLUMNS
from otedi.charges.synth import synthesize
from otedi.charges.validate import PHI_COLUMNS
from otedi.errors import ExtractError
from otedi.warehouse import models
from otedi.warehouse.db import session_scope

pytestmark = [pytest.mark.reliability]

CRASHERS = Path(__file__).parent / "crashers" / "extract"
TODAY = date(2027, 1, 1)  # after every synthetic service date
ROWS = 6
EXAMPLES = 600
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=EXAMPLES,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
BASE = synthesize(240, 11).values.tolist()  # relationships other than 18 included: subscriber PHI too
SHOWN_MIN = 4  # shorter values (OH, 11, F) occur in messages by themselves
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, CR and LF are blanks, not damage
HOSTILE = [
    "*", "~", ":", "^", "A*B", "X~Y", "97530:GO", "M62.81^Z", "\x00", "AB\x00CD", "\x01", "\x7f", "\x1b[2J",
    "\x85", "JOSÉ", "ÄÖÜ", "中文", "😀", "\u200b", "\ufeff", "\u2028", "X" * 300, "9" * 30, "1" * 12,
    "99999999999999.99", "1e308", "-5", "0", "NaN", "None", "=1+2", "=HYPERLINK(\"http://x\")", "+1",
    "@SUM(A1)", "", " ", "\t", "\r", "\n", "A\nB", '"', 'A"B', "A,B", "2026-02-30", "02/03/2026",
    "0000-00-00", "97530 ", "GO:GO:GO:GO:GO",
]
CELL = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=24))
FILE_EDITS = [None, "bom", "crlf", "cr", "no_final_newline", "latin-1", "cp1252", "utf-16", "dup_header",
              "drop_required_column", "drop_optional_column"]
_examples = itertools.count(1)


@dataclass
class Case:
    data: bytes
    clean: set[str]  # charge_ids of rows no mutation touched: they must load
    readable: bool | None  # True: must load, False: must be refused, None: either


@st.composite
def extract_cases(draw) -> Case:
    """A few valid synthetic rows (ids unique to this example), then the mutations."""
    start = draw(st.integers(0, len(BASE) - ROWS))
    prefix = f"F{next(_examples)}-"
    rows = [[prefix + r[0], *r[1:]] for r in BASE[start:start + ROWS]]
    header = list(CANONICAL_COLUMNS)
    touched: set[int] = set()
    for _ in range(draw(st.integers(0, 4))):
        r, c = draw(st.integers(0, ROWS - 1)), draw(st.integers(0, len(header) - 1))
        rows[r][c] = draw(CELL)
        touched.add(r)
    blank_after, raw, reshaped = set(), set(), set()
    for _ in range(draw(st.integers(0, 2))):
        r, k = draw(st.integers(0, ROWS - 1)), draw(st.integers(1, len(header) - 1))
        kind = draw(st.sampled_from(["drop", "extra", "unquoted_comma", "blank"]))
        if r in reshaped:
            continue  # a value dropped and another added would put the row's values out of place unseen
        reshaped.add(r)
        if kind == "drop":
            del rows[r][k]
        elif kind == "extra":
            rows[r].insert(k, draw(CELL))
        elif kind == "unquoted_comma":
            rows[r][k] += ",X"
            raw.add(r)
        else:
            blank_after.add(r)
            continue
        touched.add(r)
    edit = draw(st.sampled_from(FILE_EDITS))
    readable: bool | None = True
    if edit in ("dup_header", "drop_required_column"):
        column = draw(st.sampled_from(REQUIRED_COLUMNS[1:] if edit == "drop_required_column" else header[1:]))
        if edit == "dup_header":
            header[header.index(column)] = "charge_id"
        else:
            index = header.index(column)
            del header[index]
            rows = [row[:index] + row[index + 1:] for row in rows]
        readable = False
    elif edit == "drop_optional_column":  # one empty on every row: dropping it changes no row's meaning
        empty = [i for i, name in enumerate(header)
                 if name not in REQUIRED_COLUMNS and all(row[i:i + 1] == [""] for row in rows)]
        if empty:
            index = draw(st.sampled_from(empty))
            del header[index]
            rows = [row[:index] + row[index + 1:] for row in rows]
    elif edit in ("latin-1", "cp1252", "utf-16"):
        readable = None
    ending = {"crlf": "\r\n", "cr": "\r"}.get(edit, "\n")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=ending)
    writer.writerow(header)
    for n, row in enumerate(rows):
        if n in raw:
            out.write(",".join(row) + ending)
        else:
            writer.writerow(row)
        if n in blank_after:
            out.write(ending)
    text = out.getvalue()
    if edit == "bom":
        text = "\ufeff" + text
    if edit == "no_final_newline":
        text = text.rstrip("\r\n")
    encoding = edit if edit in ("latin-1", "cp1252", "utf-16") else "utf-8"
    data = text.encode(encoding, errors="replace")
    if readable is None:
        readable = _utf8(data)
    if any("\r" in cell or "\n" in cell or '"' in cell for n in raw for cell in rows[n]):
        touched |= set(range(ROWS))  # an unquoted line break or quote can take the rows after it along
    if readable and any('"' in cell for n in raw for cell in rows[n]):
        readable = None  # an unquoted quote may open a value never closed: that refuses the file
    clean = {rows[n][0] for n in range(ROWS) if n not in touched}
    return Case(data, clean, readable)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _records(data: bytes) -> list[list[str]]:
    """The file as the csv module reads it (header first); [] when it is not UTF-8 CSV."""
    try:
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        return []


def _misshapen(records: list[list[str]]) -> dict[int, str]:
    """Row number -> charge_id (its first value) of the rows whose count of values is not the header's: their
    values are out of place."""
    return {n: record[0].strip() for n, record in enumerate(records[1:], start=2)
            if record and len(record) != len(records[0])}


def _unsafe_values(records: list[list[str]]) -> dict[int, set[str]]:
    """Row number -> the values of its PHI columns, which no rejection of that row may repeat (unless a
    non-PHI column of the row has the same value)."""
    if not records:
        return {}
    phi = [i for i, name in enumerate(records[0]) if name in PHI_COLUMNS]
    unsafe = {}
    for number, record in enumerate(records[1:], start=2):
        values = {record[i].strip() for i in phi if i < len(record)}
        values -= {v.strip() for i, v in enumerate(record) if i not in phi}
        unsafe[number] = {v for v in values if len(v) >= SHOWN_MIN}
    return unsafe


def _shows(text: str, value: str) -> bool:
    """`value` appears in `text` as itself, not as a piece of a longer word ("name" in "patient_last_name")."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(value)}(?![A-Za-z0-9_])", text) is not None


def _counts() -> dict[str, int]:
    with session_scope() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                for m in (models.ExtractFile, models.Charge, models.ChargeReject, models.EditIssue)}


def check_extract(path: Path, *, clean: set[str] = frozenset(), readable: bool | None = None) -> str:
    """Load one extract and check everything the module docstring promises; returns what became of it."""
    records = _records(path.read_bytes())
    unsafe = _unsafe_values(records)
    damaged = {n for n, r in enumerate(records[1:], start=2) if any(CONTROL.search(v.strip()) for v in r)}
    before = _counts()
    try:
        with session_scope() as s:
            result = load_extract(s, path, today=TODAY)
    except ExtractError as exc:
        assert readable is not True, f"a readable file was refused: {exc}"
        assert str(exc).startswith(f"{path}: ")
        assert not [v for values in unsafe.values() for v in values if _shows(str(exc), v)], "the refusal shows PHI"
        assert _counts() == before, "a refused file wrote something"
        return "file refused"
    assert readable is not False, "an unreadable file was loaded"
    assert not result.already_loaded
    with session_scope() as s:
        extract_id = s.scalar(select(models.ExtractFile.id).where(models.ExtractFile.sha256 == result.sha256))
        loaded = dict(s.execute(select(models.Charge.charge_id, models.Charge.row_number)
                                .where(models.Charge.extract_file_id == extract_id)).all())
        rejects = s.execute(select(models.ChargeReject.row_number, models.ChargeReject.column_name,
                                   models.ChargeReject.rule, models.ChargeReject.message, models.ChargeReject.value)
                            .where(models.ChargeReject.extract_file_id == extract_id)).all()
    assert result.accepted + result.rejected + result.duplicates == result.rows, "a row was neither loaded nor rejected"
    assert result.accepted == len(loaded) and result.rejected == len({r.row_number for r in rejects})
    assert clean <= set(loaded), f"untouched rows not loaded: {sorted(clean - set(loaded))}"
    assert not set(loaded.values()) & damaged, "a row with a control character was loaded"
    misshapen = _misshapen(records)
    for row, column, rule, message, value in rejects:
        assert isinstance(row, int) and row >= 2 and column in CANONICAL_COLUMNS, (row, column, message)
        assert message.startswith(f"{path.name} row {row}"), message
        if row in misshapen:  # rejected whole, showing nothing but its charge_id
            assert rule == "row-shape" and value in (None, misshapen[row]), f"row {row}: values out of place shown"
            continue
        shown = message + (value or "")
        leaked = [v for v in unsafe.get(row, ()) if _shows(shown, v)]
        assert not leaked, f"row {row} {column}: the rejection repeats a PHI value"
    return f"{result.rejected} of {result.rows} rows rejected"


def _forget_extracts() -> None:
    """Empty the extract tables: each example loads into a warehouse of its own (a hostile value one example
    puts in a name and another in a code must not read as a leak to the warehouse fixture's PHI scan)."""
    with session_scope() as s:
        for model in (models.EditIssue, models.ChargeReject, models.Charge, models.ExtractFile):
            s.execute(delete(model))


@pytest.mark.postgres
@FUZZ
@given(case=extract_cases())
def test_hostile_extracts_reject_only_their_bad_rows(warehouse, tmp_path, case):
    path = tmp_path / "hostile.csv"
    path.write_bytes(case.data)
    try:
        event(check_extract(path, clean=case.clean, readable=case.readable))
    finally:
        _forget_extracts()


@pytest.mark.postgres
@pytest.mark.parametrize("crasher", sorted(CRASHERS.glob("*.csv")), ids=lambda p: p.stem)
def test_extract_crashers_stay_fixed(warehouse, crasher):
    check_extract(crasher)
